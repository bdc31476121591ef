"""One module per mapped legacy table, registered by legacy name in load order.

Each module has LEGACY_TABLE, TARGET_TABLE, KEY_COLUMNS, LEGACY_COLUMNS,
COLUMN_MAP (legacy column -> target column), OUTPUT_COLUMNS, REMEMBERED_COLUMNS
(what remember reads, so a resumed load reads back only those), CONSULTS (the
tables whose remembered rows its transform checks against), and the functions
transform(TableBatch) and remember(ctx, rows).
"""

from __future__ import annotations

from types import ModuleType

from . import dossier_files, dossier_history, dossiers, offices, persons, units

# Dependency order: a table's references point only to tables before it.
TABLES: dict[str, ModuleType] = {
    module.LEGACY_TABLE: module for module in (offices, units, persons, dossiers, dossier_files, dossier_history)
}
