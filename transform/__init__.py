"""transform stage: legacy rows to the new system's shape.

Example::

    from transform import transform_batch, TransformContext, REASON_CODES, target_table_for
    ctx = TransformContext("site-01", cutover=date(2025, 7, 1), attachments_dir=Path("attachments"),
                           reference_date=date(2025, 7, 31))
    result = transform_batch("HO_SO", batch, ctx)   # result.rows, result.rejects, result.text_repairs
"""

from .batch import consulted_tables, remembered_columns, target_table_for, transform_batch
from .context import TransformContext, TransformResult
from .reason_codes import REASON_CODES
from .tables import TABLES

MAPPED_TABLES = tuple(TABLES)  # in load (dependency) order

__all__ = [
    "transform_batch",
    "target_table_for",
    "remembered_columns",
    "consulted_tables",
    "TransformContext",
    "TransformResult",
    "REASON_CODES",
    "MAPPED_TABLES",
]
