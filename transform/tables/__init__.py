"""One module per mapped legacy table, registered by legacy name in load order.

Each module has LEGACY_TABLE, TARGET_TABLE, KEY_COLUMNS, LEGACY_COLUMNS,
COLUMN_MAP (legacy column -> target column), OUTPUT_COLUMNS, REMEMBERED_COLUMNS
(what remember reads, so a resumed load reads back only those), CONSULTS (the
tables whose remembered rows its transform checks against), and the functions
transform(TableBatch) and remember(ctx, rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from . import dossier_files, dossier_history, dossiers, offices, persons, units

if TYPE_CHECKING:
    import pandas as pd

    from ..context import TransformContext
    from .common import TableBatch


class TableModule(Protocol):
    """What every table module holds (read-only: a module's constants are never reassigned)."""

    @property
    def LEGACY_TABLE(self) -> str: ...
    @property
    def TARGET_TABLE(self) -> str: ...
    @property
    def KEY_COLUMNS(self) -> Sequence[str]: ...
    @property
    def LEGACY_COLUMNS(self) -> Sequence[str]: ...
    @property
    def COLUMN_MAP(self) -> Mapping[str, str]: ...
    @property
    def OUTPUT_COLUMNS(self) -> Sequence[str]: ...
    @property
    def REMEMBERED_COLUMNS(self) -> Sequence[str]: ...
    @property
    def CONSULTS(self) -> Sequence[str]: ...

    def transform(self, tb: TableBatch) -> dict[str, list[Any]]: ...
    def remember(self, ctx: TransformContext, rows: pd.DataFrame) -> None: ...


# Dependency order: a table's references point only to tables before it.
TABLES: dict[str, TableModule] = {
    module.LEGACY_TABLE: module for module in (offices, units, persons, dossiers, dossier_files, dossier_history)
}
