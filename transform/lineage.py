"""legacy_row_hash of many rows at once, equal to extract.fingerprint.row_digest.

The digest is what ties a loaded row to its legacy original in the backup, so
it must be exactly row_digest. Computed one value at a time it costs more
than the rest of the transform; here each column is encoded once, with the
encoder its Arrow type calls for (timestamps and dates formatted by numpy in
one pass, repeated values encoded once), and each row's digest is one SHA-256 over the
concatenated pieces, which is what row_digest's successive updates hash.
Types without a fast path use canonical_value itself.

Example::

    legacy_row_hashes(batch, rows=[0, 2])   # ['5f1c...', '09ab...']
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa

from extract.fingerprint import canonical_value

_LEN = struct.Struct(">Q")
_NULL = canonical_value(None)


def _formatted(array: pa.Array, unit: str, tag: bytes, width: int) -> list[bytes] | None:
    """Dates/timestamps as canonical pieces, formatted by numpy in one pass (`isoformat` text:
    'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS.ffffff'); None when a value would not have `width`
    characters (years outside 1000-9999), where numpy and Python could disagree."""
    texts = np.datetime_as_string(array.to_numpy(zero_copy_only=False), unit=unit)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    if valid.any() and not (np.char.str_len(texts[valid]) == width).all():
        return None
    prefix = np.frombuffer(tag + _LEN.pack(width), dtype=np.uint8)
    table = np.empty((len(texts), len(prefix) + width), dtype=np.uint8)
    table[:, :len(prefix)] = prefix
    table[valid, len(prefix):] = np.frombuffer(texts[valid].astype(f"S{width}").tobytes(),
                                               dtype=np.uint8).reshape(-1, width)
    if width > 10:
        table[:, len(prefix) + 10] = ord(" ")  # numpy writes 'T' between date and time
    pieces = table.view(f"S{table.shape[1]}").ravel().tolist()
    return [piece if ok else _NULL for piece, ok in zip(pieces, valid)]


def _cached(values: Sequence[Any], encode: Callable[[Any], bytes]) -> list[bytes]:
    cache: dict[Any, bytes] = {}
    pieces = []
    for value in values:
        piece = cache.get(value)
        if piece is None:
            piece = _NULL if value is None else encode(value)
            if len(cache) < 65536:
                cache[value] = piece
        pieces.append(piece)
    return pieces


def _text(value: str) -> bytes:
    payload = value.encode("utf-8", "surrogatepass")
    return b"s" + _LEN.pack(len(payload)) + payload


def _integer(value: int) -> bytes:
    payload = str(value).encode()
    return b"i" + _LEN.pack(len(payload)) + payload


def column_pieces(array: pa.Array, values: Sequence[Any]) -> list[bytes]:
    """canonical_value of every value of one column (`values` is array.to_pylist())."""
    kind = array.type
    if pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz is None:
        pieces = _formatted(array, "us", b"t", 26)
        if pieces is not None:
            return pieces
    if pa.types.is_date32(kind):
        pieces = _formatted(array, "D", b"D", 10)
        if pieces is not None:
            return pieces
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _cached(values, _text)
    if pa.types.is_integer(kind):
        return _cached(values, _integer)
    return [canonical_value(v) for v in values]  # bytes, floats, decimals, others: the reference itself


def legacy_row_hashes(batch: pa.RecordBatch, python_columns: Sequence[Sequence[Any]] | None = None,
                      rows: Sequence[int] | None = None) -> list[str]:
    """Hex row_digest of the chosen rows (all by default), columns in batch order."""
    if python_columns is None:
        python_columns = [column.to_pylist() for column in batch.columns]
    columns = [column_pieces(batch.column(i), values) for i, values in enumerate(python_columns)]
    count = _LEN.pack(len(columns))
    chosen = range(batch.num_rows) if rows is None else rows
    sha256 = hashlib.sha256
    return [sha256(count + b"".join([pieces[i] for pieces in columns])).hexdigest() for i in chosen]
