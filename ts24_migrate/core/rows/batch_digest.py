"""Row digests of many rows at once, column by column: exactly ts24_migrate.core.rows.fingerprint.row_digest.

row_digest hashes, per row, the column count and then each value's canonical
encoding (`canonical_value`: tag, 8-byte length, payload), one value at a
time in Python. Here each *column* is encoded at once by Arrow where its type
allows (integers and booleans as decimal text, text as UTF-8, bytes as they
are, naive timestamps and dates in their ISO text), the pieces of a row are
joined by Arrow, and each row's digest is one SHA-256 over its joined bytes:
the very bytes row_digest's successive updates feed the hash. Columns Arrow
cannot encode exactly like Python (floats, decimals, times, aware
timestamps, mixed types) go through canonical_value itself, the reference.

This is the one implementation: the backup's part fingerprints, the
transform's lineage hashes and TableFingerprint.add_rows all use it, and the
property tests hold it equal to row_digest.

Example::

    row_digests([(1, "Hà Nội"), (2, None)]) == [row_digest((1, "Hà Nội")), row_digest((2, None))]
    batch_row_digests(batch, rows=[0, 2])     # digests of rows 0 and 2 of an Arrow batch
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_types import CANONICAL, column_encoding, decode_canonical
from .fingerprint import canonical_value, row_digest

_LEN = struct.Struct(">Q")
_NULL = canonical_value(None)
_PIECES = pa.large_binary()
_NULL_PIECE = pa.scalar(_NULL, _PIECES)
_NOTHING = pa.scalar(b"", _PIECES)


def _framed(tag: bytes, payload: pa.Array) -> pa.Array:
    """tag + 8-byte big-endian length + payload for every value; b"N" where the value is null."""
    payload = payload.cast(_PIECES)
    lengths = pc.binary_length(payload).fill_null(0).to_numpy(zero_copy_only=False).astype(">u8")
    framing = pa.FixedSizeBinaryArray.from_buffers(pa.binary(8), len(payload), [None, pa.py_buffer(lengths)])
    pieces = pc.binary_join_element_wise(pa.scalar(tag, _PIECES), framing.cast(_PIECES), payload, _NOTHING)
    return pieces.fill_null(_NULL_PIECE)


def _iso_text(array: pa.Array, tag: bytes, width: int) -> pa.Array | None:
    """Dates/timestamps framed like canonical_value, from Arrow's text cast, which writes what
    `isoformat` does ('YYYY-MM-DD', 'YYYY-MM-DD HH:MM:SS.ffffff'); None when a value is not of
    that width (a year beyond 9999, which no Python value holds)."""
    text = pc.cast(array, pa.string())
    lengths = pc.min_max(pc.binary_length(text))
    if text.null_count < len(text) and (lengths["min"].as_py(), lengths["max"].as_py()) != (width, width):
        return None
    return _framed(tag, text)


def _arrow_pieces(array: pa.Array) -> pa.Array | None:
    """The canonical pieces of a column Arrow can encode exactly as Python would; else None."""
    kind = array.type
    if pa.types.is_integer(kind):
        return _framed(b"i", pc.cast(array, pa.string()))
    if pa.types.is_boolean(kind):
        return _framed(b"i", pc.if_else(array, pa.scalar("1"), pa.scalar("0")))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _framed(b"s", array)  # Arrow text is UTF-8 already
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _framed(b"b", array)
    if pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz is None:
        return _iso_text(array, b"t", 26)
    if pa.types.is_date32(kind):
        return _iso_text(array, b"D", 10)
    return None


def _python_pieces(values: Sequence[Any]) -> pa.Array:
    """canonical_value itself, value by value, for what Arrow cannot encode the same way."""
    return pa.array([canonical_value(v) for v in values], _PIECES)


def _stored_pieces(array: pa.Array) -> pa.Array:
    """Pieces of a column stored canonically (ts24_migrate.core.rows.arrow_types): the stored bytes are the
    canonical encoding already, except a Decimal's, which keeps every digit and is normalized here."""
    stored = array.to_pylist()
    return pa.array(
        [_NULL if v is None else canonical_value(decode_canonical(v)) if v[:1] == b"d" else v for v in stored], _PIECES
    )


# Python type -> Arrow type its values convert to exactly, for chunks of row tuples.
_ARROW_TYPES: dict[type, pa.DataType] = {
    str: pa.large_string(),
    int: pa.int64(),
    bool: pa.bool_(),
    bytes: pa.large_binary(),
    dt.datetime: pa.timestamp("us"),
    dt.date: pa.date32(),
}


def _value_pieces(values: Sequence[Any]) -> pa.Array:
    """The canonical pieces of one column of Python values."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    arrow_type = _ARROW_TYPES.get(kinds.pop()) if len(kinds) == 1 else None  # exact type: a bool is no int
    if arrow_type == pa.timestamp("us") and any(v.tzinfo is not None for v in values if v is not None):
        arrow_type = None  # aware: Arrow would convert it to UTC
    if arrow_type is not None:
        try:
            array = pa.array(values, arrow_type)
        except (pa.ArrowException, OverflowError, UnicodeError):  # an int beyond int64, a lone surrogate
            array = None
        pieces = _arrow_pieces(array) if array is not None else None
        if pieces is not None:
            return pieces
    return _python_pieces(values)


def _digests(pieces: Sequence[pa.Array], row_count: int, rows: Sequence[int] | None) -> list[bytes]:
    """SHA-256 of (column count + every column's piece) for each row, or for the chosen `rows`."""
    if row_count == 0 or (rows is not None and not rows):
        return []
    count = pa.scalar(_LEN.pack(len(pieces)), _PIECES)
    if pieces:
        encoded = pc.binary_join_element_wise(count, *pieces, _NOTHING)
    else:
        encoded = pa.array([count.as_py()] * row_count, _PIECES)
    if rows is not None:
        encoded = encoded.take(pa.array(rows, pa.int64()))
    _, offsets_buffer, data_buffer = encoded.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[encoded.offset : encoded.offset + len(encoded) + 1]
    data = memoryview(data_buffer)
    bounds = offsets.tolist()
    sha256 = hashlib.sha256
    return [sha256(data[start:end]).digest() for start, end in pairwise(bounds)]


def row_digests(rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """row_digest of every row of a chunk of row tuples."""
    if not rows:
        return []
    width = len(rows[0])
    if any(len(row) != width for row in rows):  # ragged rows: no columns to speak of
        return [row_digest(row) for row in rows]
    return _digests([_value_pieces(values) for values in zip(*rows)], len(rows), None)


def batch_row_digests(
    batch: pa.RecordBatch | pa.Table,
    python_columns: Sequence[Sequence[Any]] | None = None,
    rows: Sequence[int] | None = None,
) -> list[bytes]:
    """row_digest of the chosen rows of an Arrow batch (all by default), columns in batch order.

    The digest is that of the Python values the batch stands for: `to_pylist()`
    values, or for a column stored canonically by ts24_migrate.core.rows.arrow_types (a
    backup part) the values it decodes to. `python_columns`, when the caller has
    them already, spare converting the columns Arrow cannot encode itself.
    """
    pieces = []
    for i, field in enumerate(batch.schema):
        array = batch.column(i)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if column_encoding(field) == CANONICAL:
            pieces.append(_stored_pieces(array))
            continue
        column = _arrow_pieces(array)
        if column is None:
            column = _python_pieces(python_columns[i] if python_columns is not None else array.to_pylist())
        pieces.append(column)
    return _digests(pieces, batch.num_rows, rows)


def legacy_row_hashes(
    batch: pa.RecordBatch | pa.Table,
    python_columns: Sequence[Sequence[Any]] | None = None,
    rows: Sequence[int] | None = None,
) -> list[str]:
    """batch_row_digests as hex: the legacy_row_hash the load keeps for lineage."""
    return [digest.hex() for digest in batch_row_digests(batch, python_columns, rows)]
