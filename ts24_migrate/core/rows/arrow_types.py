"""Legacy rows to Arrow record batches and back, without changing a single value.

The backup's promise is that a restore gives back the *same Python values*
the extraction read, so that ts24_migrate.core.rows.fingerprint recomputes the same table
fingerprint from a Parquet part, a restored database or the live source.

Each column gets a *kind* from its declared SQL type (int, float, decimal,
datetime, ...) and the matching Arrow type. Legacy data does not always obey
its declared type (SQLite stores any value in any column; a driver may hand
back bytes for text, an aware datetime, an int too large for int64): when a
chunk's values do not all fit the column's Arrow type exactly (or text holds a
NUL character, which PostgreSQL text cannot store), that column is stored,
*for that part only*, in the "canonical" encoding: a binary column
holding ts24_migrate.core.rows.fingerprint.canonical_value(v) (`stored_value`), which
`decode_canonical` turns back into the identical Python value. Nothing is coerced, nothing lost.

Example::

    plan = column_plan(table_info)
    batch = rows_to_batch(plan, rows)
    assert batch_to_rows(batch) == rows
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from .fingerprint import canonical_value

ENCODING_KEY = b"ts24.encoding"
CANONICAL = "canonical"
NATIVE = "native"

_LEN = struct.Struct(">Q")

# kind -> (Arrow type, the exact Python type a value must have to be stored natively)
_KINDS: dict[str, tuple[pa.DataType, type]] = {
    "int": (pa.int64(), int),
    "bool": (pa.bool_(), bool),
    "float": (pa.float64(), float),
    "datetime": (pa.timestamp("us"), dt.datetime),
    "date": (pa.date32(), dt.date),
    "time": (pa.time64("us"), dt.time),
    "string": (pa.large_string(), str),
    "binary": (pa.large_binary(), bytes),
}


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is stored: its kind and Arrow type ("dynamic" means always canonical)."""

    name: str
    source_type: str
    nullable: bool
    kind: str
    arrow_type: pa.DataType | None  # None for "dynamic"

    def describe(self) -> dict[str, Any]:
        """The column as the manifest records it."""
        entry: dict[str, Any] = {
            "name": self.name,
            "source_type": self.source_type,
            "nullable": self.nullable,
            "kind": self.kind,
            "arrow_type": str(self.arrow_type) if self.arrow_type is not None else None,
        }
        if isinstance(self.arrow_type, pa.Decimal128Type):
            entry["precision"], entry["scale"] = self.arrow_type.precision, self.arrow_type.scale
        return entry


def kind_of(type_: sa.types.TypeEngine[Any]) -> tuple[str, pa.DataType | None]:
    """The storage kind of a declared SQL type; unknown types are stored canonically."""
    if isinstance(type_, sa.Boolean):
        return "bool", pa.bool_()
    if isinstance(type_, sa.Integer):
        return "int", pa.int64()
    if isinstance(type_, sa.Float):  # before Numeric: Float is a Numeric subclass
        return "float", pa.float64()
    if isinstance(type_, sa.Numeric):
        precision, scale = type_.precision, type_.scale
        if precision and scale is not None and 0 < precision <= 38 and 0 <= scale <= precision:
            return "decimal", pa.decimal128(precision, scale)
        return "dynamic", None
    if isinstance(type_, sa.DateTime):
        return "datetime", pa.timestamp("us")
    if isinstance(type_, sa.Date):
        return "date", pa.date32()
    if isinstance(type_, sa.Time):
        return "time", pa.time64("us")
    if isinstance(type_, (sa.String, sa.Enum, sa.Uuid)):  # a UUID is read as its text (extraction)
        return "string", pa.large_string()
    if isinstance(type_, sa.types._Binary):
        return "binary", pa.large_binary()
    return "dynamic", None


def _fits(kind: str, values: Sequence[Any]) -> bool:
    if kind == "dynamic":
        return False
    if kind == "decimal":
        return all(v is None or type(v) is decimal.Decimal for v in values)
    expected = _KINDS[kind][1]
    if kind in ("datetime", "time"):
        return all(
            v is None or (type(v) is expected and isinstance(v, (dt.datetime, dt.time)) and v.tzinfo is None)
            for v in values
        )
    if kind == "string":
        # Text holding NUL is legal in SQL Server, MariaDB and SQLite but not in PostgreSQL text:
        # kept canonical (binary), a restore into PostgreSQL still gives it back intact.
        return all(v is None or (type(v) is str and "\x00" not in v) for v in values)
    return all(v is None or type(v) is expected for v in values)


def stored_value(value: Any) -> bytes:
    """The canonical encoding, except that a Decimal keeps every digit and its exponent.

    (canonical_value normalizes a Decimal in the current context, 28 digits by
    default: right for comparing, lossy for storing DECIMAL(38) values.)
    """
    if isinstance(value, decimal.Decimal):
        payload = str(value).encode()
        return b"d" + _LEN.pack(len(payload)) + payload
    return canonical_value(value)


def _native_array(plan: ColumnPlan, values: Sequence[Any]) -> pa.Array | None:
    if not _fits(plan.kind, values):
        return None
    try:
        array = pa.array(values, type=plan.arrow_type)
    except (pa.ArrowException, ValueError, TypeError, OverflowError, UnicodeError):
        # e.g. an int beyond int64, a Decimal with more places than the scale, a lone surrogate
        return None
    if plan.kind == "decimal" and array.to_pylist() != list(values):
        return None  # Arrow may round a tiny Decimal to the scale without raising: never accept that
    return array


def rows_to_batch(plans: Sequence[ColumnPlan], rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """One record batch holding `rows` exactly; see the module docstring for the fallback."""
    columns = list(zip(*rows)) if rows else [() for _ in plans]
    stored = [column_array(plan, values) for plan, values in zip(plans, columns)]
    return pa.RecordBatch.from_arrays([array for array, _ in stored], schema=pa.schema([f for _, f in stored]))


def column_array(plan: ColumnPlan, values: Sequence[Any]) -> tuple[pa.Array, pa.Field]:
    """One column of a chunk as rows_to_batch stores it: natively when every value fits, else canonical."""
    array = _native_array(plan, values)
    if array is not None:
        return array, native_field(plan)
    canonical = pa.array([None if v is None else stored_value(v) for v in values], type=pa.large_binary())
    return canonical, _field(plan.name, pa.large_binary(), CANONICAL)


def native_field(plan: ColumnPlan) -> pa.Field:
    """The field of a column stored natively (its plan's Arrow type); not for a "dynamic" plan."""
    if plan.arrow_type is None:
        raise ValueError(f"{plan.name}: a column of kind {plan.kind} is never stored natively")
    return _field(plan.name, plan.arrow_type, NATIVE)


def _field(name: str, arrow_type: pa.DataType, encoding: str) -> pa.Field:
    return pa.field(name, arrow_type, nullable=True, metadata={ENCODING_KEY: encoding.encode()})


def nul_text_counts(plans: Sequence[ColumnPlan], batch: pa.RecordBatch) -> dict[str, int]:
    """{column: rows} of text columns that this batch stores canonically because values hold NUL.

    Only the why is counted here (rows_to_batch decides the storage): the backup
    reports, per table and column, how many values it kept as framed binary for that reason.
    """
    counts: dict[str, int] = {}
    header = 1 + _LEN.size  # a canonical value: tag, length, payload (UTF-8 text: NUL only as a 0 byte)
    for index, (plan, field) in enumerate(zip(plans, batch.schema)):
        if plan.kind == "string" and column_encoding(field) == CANONICAL:
            stored = batch.column(index).to_pylist()
            found = sum(1 for v in stored if v is not None and v[:1] == b"s" and b"\x00" in v[header:])
            if found:
                counts[plan.name] = found
    return counts


def column_encoding(field: pa.Field) -> str:
    metadata = field.metadata or {}
    encoding: bytes = metadata.get(ENCODING_KEY, NATIVE.encode())
    return encoding.decode()


def batch_columns(batch: pa.RecordBatch | pa.Table) -> list[list[Any]]:
    """The batch's columns as lists of the original Python values."""
    columns = []
    for field, column in zip(batch.schema, batch.columns):
        values = column.to_pylist()
        if column_encoding(field) == CANONICAL:
            values = [None if v is None else decode_canonical(v) for v in values]
        columns.append(values)
    return columns


def batch_to_rows(batch: pa.RecordBatch | pa.Table) -> list[tuple[Any, ...]]:
    """The rows of a batch written by rows_to_batch, as tuples of the original values."""
    columns = batch_columns(batch)
    return list(zip(*columns)) if columns else [() for _ in range(batch.num_rows)]


def schema_layout(schema: pa.Schema) -> list[list[str]]:
    """[[column, arrow type, encoding], ...]: what the manifest records as a part's schema."""
    return [[field.name, str(field.type), column_encoding(field)] for field in schema]


def schema_id(layout: list[list[str]]) -> str:
    """Short stable id of a schema layout, so parts can refer to a table's schemas."""
    text = json.dumps(layout, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decode_canonical(data: bytes) -> Any:
    """Inverse of ts24_migrate.core.rows.fingerprint.canonical_value.

    >>> decode_canonical(canonical_value(dt.date(2025, 7, 1)))
    datetime.date(2025, 7, 1)
    """
    data = bytes(data)
    tag = data[:1]
    if tag == b"N":
        if len(data) != 1:
            raise ValueError("malformed canonical value")
        return None
    (length,) = _LEN.unpack_from(data, 1)
    payload = data[1 + _LEN.size :]
    if len(payload) != length:
        raise ValueError("malformed canonical value: length does not match")
    if tag == b"i":
        return int(payload)
    if tag == b"f":
        return float(payload)
    if tag == b"d":
        return decimal.Decimal(payload.decode())
    if tag == b"s":
        return payload.decode("utf-8", "surrogatepass")
    if tag == b"b":
        return payload
    if tag == b"t":
        return dt.datetime.fromisoformat(payload.decode())
    if tag == b"D":
        return dt.date.fromisoformat(payload.decode())
    if tag == b"T":
        return dt.time.fromisoformat(payload.decode())
    raise ValueError(f"unknown canonical tag {tag!r}")
