"""transform_batch: one Arrow batch of a mapped legacy table -> rows and rejects.

Every input row comes out exactly once: in `rows` (the target table's
business columns, Python values in object columns, ready for the load) or in
`rejects` (with its first blocking reason). System tables (HT_NGUOI_DUNG,
HT_NHAT_KY) and unmapped tables are never loaded, so asking to transform
them is a programming error.

Example::

    ctx = TransformContext("site-01", cutover=date(2025, 7, 1), attachments_dir=None,
                           reference_date=date(2025, 7, 31))
    for batch in iter_table_batches(conn, table_info):
        result = transform_batch("DM_DONVI", batch, ctx)
        load(result.rows); record(result.rejects)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from ts24_migrate.core.legacy.schema import SYSTEM_TABLES

from .context import TransformContext, TransformResult
from .lineage import legacy_row_hashes
from .tables import TABLES, TableModule
from .tables.common import TableBatch


def _module_for(legacy_table: str) -> TableModule:
    name = legacy_table.upper()
    if name in SYSTEM_TABLES:
        raise ValueError(
            f"{name} is a system table (accounts, access log): it is backed up and purged, never transformed or loaded"
        )
    module = TABLES.get(name)
    if module is None:
        raise ValueError(f"{legacy_table} is not a mapped table; mapped tables: {', '.join(TABLES)}")
    return module


def target_table_for(legacy_table: str) -> str:
    """The new system's table for a mapped legacy table: target_table_for("HO_SO") -> "dossiers"."""
    return _module_for(legacy_table).TARGET_TABLE


def remembered_columns(legacy_table: str) -> tuple[str, ...]:
    """The columns of accepted rows that `TransformContext.remember_accepted` reads (besides legacy_key).

    Empty for tables nothing later depends on: a resumed load need not read them back.
    """
    return tuple(_module_for(legacy_table).REMEMBERED_COLUMNS)


def consulted_tables(legacy_table: str) -> tuple[str, ...]:
    """The legacy tables whose accepted rows the transform of `legacy_table` checks against.

    consulted_tables("HO_SO_LICH_SU") == ("HO_SO",): history rows need the accepted dossiers.
    """
    return tuple(_module_for(legacy_table).CONSULTS)


def transform_batch(
    legacy_table: str,
    batch: pa.RecordBatch,
    ctx: TransformContext,
    python_columns: Sequence[Sequence[Any]] | None = None,
    legacy_keys: Sequence[str] | None = None,
) -> TransformResult:
    """Transform one batch; remembers its accepted rows in `ctx` for the batches and tables after it.

    `python_columns`: the batch's values as Python lists, by column, when the caller
    has them (the rows it read): the same values, without converting them back from Arrow.
    `legacy_keys`: the rows' keys, when the caller made them over the whole table
    (tables.common.legacy_key_texts, which ranks identical rows whose key is NULL).
    """
    module = _module_for(legacy_table)
    name = module.LEGACY_TABLE
    tb = TableBatch(name, batch, module.KEY_COLUMNS, module.LEGACY_COLUMNS, ctx, python_columns, legacy_keys)
    columns = module.transform(tb)
    accepted = tb.verdicts.accepted()

    data: dict[str, pd.Series] = {}
    for column in module.OUTPUT_COLUMNS:
        values = (
            [tb.verdicts.flags_text(i) for i in accepted]
            if column == "dq_flags"
            else [columns[column][i] for i in accepted]
        )
        data[column] = pd.Series(values, dtype=object)
    data["legacy_key"] = pd.Series([tb.legacy_keys[i] for i in accepted], dtype=object)
    # row_digest over the legacy row's values in the batch's (legacy) column order, as extract reads it.
    data["legacy_row_hash"] = pd.Series(
        legacy_row_hashes(batch, [tb.columns[n] for n in tb.names], accepted), dtype=object
    )
    if "dq_flags" not in data:
        data["dq_flags"] = pd.Series([tb.verdicts.flags_text(i) for i in accepted], dtype=object)
    rows = pd.DataFrame(data)

    result = TransformResult(
        name, module.TARGET_TABLE, rows, tb.verdicts.rejects_frame(), tb.text_repairs, tb.verdicts.flags_frame()
    )
    if result.rows_in != batch.num_rows:  # the accounting invariant, checked on every batch
        raise AssertionError(f"{name}: {batch.num_rows} rows in, {result.rows_in} out")
    module.remember(ctx, rows)
    return result
