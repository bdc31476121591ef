"""Keyset pages of a SQLite legacy table through ADBC (adbc-driver-sqlite), exactly as the current reader.

ADBC alone does not hand back what the current reader does: it infers one Arrow
type per column from the first rows, so a column whose values are not all of
one SQLite storage class comes back altered (12.5 next to 'n/a' as the text
'1.250000e+01'); it does not check that text is UTF-8; and DATETIME and DATE
columns come back as their text. So each page also asks every value's storage
class (typeof()), and per column:

- values all of one storage class, as the declared type expects (INTEGER
  integers, REAL reals, text in text, BLOB blobs) are taken as ADBC gives them;
  DATETIME and DATE text all in ISO form is cast by Arrow, which parses that
  one form as `fromisoformat` does (and refuses an impossible date);
- other values of one storage class (a DATETIME text in another form, text
  that is not UTF-8 or holds NUL, a NUMERIC(p, s) as Decimal) are converted
  value by value with the current reader's own converters;
- a column mixing storage classes: the page is refused (read the current way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import processors as sa_processors

from ts24_migrate.core.rows.arrow_types import ColumnPlan

from .arrow_pages import ArrowReadStats, PageColumn, all_null, converted, stored_batch
from .discovery import TableInfo
from .reader import declared_converter, keyset_conditions, stored_converter, text_or_bytes

_ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{6})?$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
# Storage classes a kind is taken natively from, and the Arrow type ADBC gives each class.
_NATIVE_CLASS = {"int": "integer", "float": "real", "string": "text", "binary": "blob"}
_ADBC_TYPE = {"integer": pa.int64(), "real": pa.float64(), "text": pa.string(), "blob": pa.binary()}


class SqlitePages:
    """A table's keyset pages through one read-only ADBC connection; SQL compiled once per table."""

    def __init__(
        self,
        adbc: Any,
        conn: Connection,
        table: TableInfo,
        plans: Sequence[ColumnPlan],
        chunk_rows: int,
        stats: ArrowReadStats,
    ):
        self.adbc, self.plans, self.stats = adbc, plans, stats
        columns = list(table.table.columns)
        self.converters = [
            (declared_converter(c.type, conn.dialect), stored_converter(c.type, conn.dialect)) for c in columns
        ]
        # Each value with its storage class, which tells whether ADBC's value is exact.
        query = (
            sa.select(*columns, *[sa.func.typeof(c) for c in columns])
            .order_by(*[table.table.c[name] for name in table.primary_key])
            .limit(chunk_rows)
        )
        self.first = query.where(*keyset_conditions(table, None)).compile(dialect=conn.dialect)
        self.after = query.where(*keyset_conditions(table, None, named_after=True)).compile(dialect=conn.dialect)

    def close(self) -> None:
        self.adbc.close()

    def page(self, last_key: Sequence[Any] | None) -> pa.RecordBatch | None:
        """The page after `last_key` as rows_to_batch would store it; None to read it the current way."""
        compiled = self.first if last_key is None else self.after
        given = {} if last_key is None else {f"after_{i}": value for i, value in enumerate(last_key)}
        values = compiled.construct_params(given)
        parameters = [values[name] for name in getattr(compiled, "positiontup", None) or ()]
        cursor = self.adbc.cursor()
        try:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
            cursor.execute(str(compiled), parameters)
            result = cursor.fetch_arrow_table()
        except Exception as exc:  # noqa: BLE001 - e.g. a later batch whose values do not fit the inferred type
            self.stats.note(f"page: ADBC refused ({type(exc).__name__})")
            return None
        finally:
            cursor.close()
        width = len(self.plans)
        columns = []
        for index, (plan, (declared, convert)) in enumerate(zip(self.plans, self.converters)):
            classes = set(pc.unique(result.column(width + index)).to_pylist()) - {"null", None}
            column = _column(plan, result.column(index).combine_chunks(), classes, declared, convert)
            if column is None:
                self.stats.note(f"page: {plan.name} holds {'/'.join(sorted(classes))}")
                return None
            columns.append(column)
        return stored_batch(self.plans, columns, self.stats)


def _column(
    plan: ColumnPlan,
    raw: pa.Array,
    classes: set[str],
    declared: Callable[[Any], Any] | None,
    convert: Callable[[Any], Any] | None,
) -> PageColumn:
    """One column: a native array (the plan's type), Python values (column_array stores them as
    rows_to_batch would), or None when ADBC's values are not exactly the stored ones.

    `declared`: the column type's own converter (tells which one it is); `convert`: the same as
    the current reader applies it (a value it cannot convert kept as stored)."""
    if not classes:
        return all_null(plan, len(raw))
    if len(classes) > 1:
        return None  # ADBC coerces mixed storage classes into one type, altering values
    (storage,) = classes
    if storage not in _ADBC_TYPE:
        return None
    if storage in ("text", "blob") and not (pa.types.is_string(raw.type) or pa.types.is_binary(raw.type)):
        return None
    if storage in ("integer", "real") and raw.type != _ADBC_TYPE[storage]:
        return None
    text = _utf8_text(raw) if storage == "text" else None
    if storage == "text" and text is None:  # not all UTF-8: as the current reader, bytes for those
        return converted(raw.cast(pa.binary()).to_pylist(), convert, text_or_bytes)
    values = raw if text is None else text
    native = _native(plan, values, storage, declared)
    if native is not None:
        return native
    return converted(values.to_pylist(), convert)


def _utf8_text(raw: pa.Array) -> pa.Array | None:
    """The array as text when every value is valid UTF-8 (ADBC does not check), else None."""
    text = raw if pa.types.is_string(raw.type) else raw.cast(pa.string(), safe=False)
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return text


def _native(plan: ColumnPlan, raw: pa.Array, storage: str, declared: Callable[[Any], Any] | None) -> pa.Array | None:
    """The column in the plan's Arrow type without a Python value, where that is exact; else None."""
    if declared is None and _NATIVE_CLASS.get(plan.kind) == storage:
        if plan.kind == "string" and pc.any(pc.match_substring(raw, "\x00")).as_py():
            return None  # text holding NUL is stored canonically: column_array decides
        assert plan.arrow_type is not None
        return raw.cast(plan.arrow_type)
    if storage != "text" or declared not in (sa_processors.str_to_datetime, sa_processors.str_to_date):
        return None
    # fromisoformat's result for the ISO form SQLAlchemy writes, which Arrow parses alike; a
    # year 0000 Arrow takes and Python does not; an impossible date Arrow refuses (-> Python).
    target, pattern = (
        (pa.timestamp("us"), _ISO_DATETIME) if declared is sa_processors.str_to_datetime else (pa.date32(), _ISO_DATE)
    )
    if plan.arrow_type != target:
        return None
    present = raw.drop_null()
    if (
        not pc.all(pc.match_substring_regex(present, pattern)).as_py()
        or pc.any(pc.starts_with(present, "0000")).as_py()
    ):
        return None
    try:
        return raw.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
