"""How each business table receives TS24 rows: its key, its natural key, its parent.

- key: the table's primary key, the `target_key` of the crosswalk.
  An integer surrogate (units.unit_id) is allocated by the load; a code key
  (offices.office_code) comes with the row.
- natural_key: the unique business code matched against rows the new system
  already holds (a unit registered on the portal has the same unit_code as
  its TS24 row). Tables without one (files, history) only match through the
  crosswalk.
- parent: a column resolved from the transformed row's legacy parent key
  through the crosswalk (dossier_files.dossier_id from `legacy_dossier_id`).
- guarded: rows the new system changed after the cut-over are never
  overwritten (tables with `source` and `updated_at`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import target_schema

TS24_SOURCE = "ts24"


@dataclass(frozen=True)
class Parent:
    column: str  # in the business table, e.g. dossier_id
    legacy_column: str  # in the transformed rows, e.g. legacy_dossier_id
    target_table: str  # whose crosswalk resolves it, e.g. dossiers
    legacy_table: str  # the legacy table of those crosswalk rows (their key's first columns)


@dataclass(frozen=True)
class TargetSpec:
    table: sa.Table
    natural_key: str | None = None
    parent: Parent | None = None

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def key(self) -> sa.Column[Any]:
        (column,) = self.table.primary_key.columns
        return column

    @property
    def surrogate(self) -> bool:
        """True when the load allocates the key (integer surrogate), False for a code key."""
        return isinstance(self.key.type, sa.Integer)

    @property
    def guarded(self) -> bool:
        return "updated_at" in self.table.c and "source" in self.table.c

    def hashed_columns(self) -> list[sa.Column[Any]]:
        """The columns of the row hash the crosswalk keeps (row_md5): all but an integer surrogate key, in table order.

        validation.parity recomputes the hash over the same list.
        """
        return [c for c in self.table.columns if not (c is self.key and self.surrogate)]

    def row_columns(self) -> list[sa.Column[Any]]:
        """The business columns a transformed row provides (no surrogate key, parent or `source`)."""
        skip = {"source"} | ({self.parent.column} if self.parent else set())
        return [c for c in self.hashed_columns() if c.name not in skip]


_DOSSIER = Parent(column="dossier_id", legacy_column="legacy_dossier_id", target_table="dossiers", legacy_table="HO_SO")

TARGET_SPECS: dict[str, TargetSpec] = {
    "offices": TargetSpec(target_schema.offices, natural_key="office_code"),
    "units": TargetSpec(target_schema.units, natural_key="unit_code"),
    "insured_persons": TargetSpec(target_schema.insured_persons, natural_key="social_insurance_no"),
    "dossiers": TargetSpec(target_schema.dossiers, natural_key="dossier_no"),
    "dossier_files": TargetSpec(target_schema.dossier_files, parent=_DOSSIER),
    "dossier_history": TargetSpec(target_schema.dossier_history, parent=_DOSSIER),
}


def target_spec(table_name: str) -> TargetSpec:
    try:
        return TARGET_SPECS[table_name]
    except KeyError:
        raise ValueError(f"{table_name!r} does not receive TS24 rows (one of: {', '.join(TARGET_SPECS)})") from None
