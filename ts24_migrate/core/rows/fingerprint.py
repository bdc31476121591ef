"""Content fingerprints that any stage can recompute from any copy of a table.

A row digest is the SHA-256 of a canonical, type-tagged, length-prefixed
encoding of the row's values in column order, so the same logical row hashes
the same whether it is read from SQL Server, MariaDB, SQLite, a Parquet part
or a restored PostgreSQL table.

A table fingerprint is the row count plus the sum of all row digests modulo
2**256. The sum makes it independent of row order (a table without a key can
be read in any order) and of chunking, keeps duplicate rows visible (unlike
XOR, two equal rows do not cancel), and lets a delta update it: subtract the
old digest of a changed row, add the new one.

row_digest is the reference, one value at a time; ts24_migrate.core.rows.batch_digest
computes the same digests column-wise for whole chunks, and add_rows uses it.

Example::

    fp = TableFingerprint()
    fp.add_rows(rows)         # or fp.add(row), one row at a time
    fp.hexdigest()            # 'rows=3;sum=9f86d0...'
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

_MODULUS = 1 << 256
_LEN = struct.Struct(">Q")
_ROWS_PER_SLICE = 10_000  # rows digested together when add_rows is handed an iterator


def _exact_decimal(value: decimal.Decimal) -> str:
    """Plain digits, trailing fractional zeros dropped; exact whatever the decimal context
    (Decimal.normalize() would round to the context's 28 digits)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def canonical_value(value: Any) -> bytes:
    """Tag + length + payload; distinct types and boundaries never collide."""
    if value is None:
        return b"N"
    if isinstance(value, bool):
        payload, tag = b"1" if value else b"0", b"i"
    elif isinstance(value, int):
        payload, tag = str(value).encode(), b"i"
    elif isinstance(value, float):
        payload, tag = repr(value).encode(), b"f"
    elif isinstance(value, decimal.Decimal):
        payload, tag = _exact_decimal(value).encode(), b"d"
    elif isinstance(value, str):
        payload, tag = value.encode("utf-8", "surrogatepass"), b"s"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        payload, tag = bytes(value), b"b"
    elif isinstance(value, dt.datetime):
        # Naive and aware datetimes are kept apart; microseconds always written.
        payload, tag = value.isoformat(sep=" ", timespec="microseconds").encode(), b"t"
    elif isinstance(value, dt.date):
        payload, tag = value.isoformat().encode(), b"D"
    elif isinstance(value, dt.time):
        payload, tag = value.isoformat(timespec="microseconds").encode(), b"T"
    elif isinstance(value, uuid.UUID):
        payload, tag = str(value).encode(), b"u"
    else:
        raise TypeError(f"no canonical encoding for {type(value).__name__}")
    return tag + _LEN.pack(len(payload)) + payload


def row_digest(values: Sequence[Any]) -> bytes:
    """SHA-256 of one row's canonical encoding (values in column order)."""
    h = hashlib.sha256()
    h.update(_LEN.pack(len(values)))
    for value in values:
        h.update(canonical_value(value))
    return h.digest()


@dataclass
class TableFingerprint:
    """Order-independent multiset fingerprint of a table's rows."""

    rows: int = 0
    total: int = field(default=0, repr=False)

    def add_digest(self, digest: bytes) -> None:
        self.rows += 1
        self.total = (self.total + int.from_bytes(digest, "big")) % _MODULUS

    def remove_digest(self, digest: bytes) -> None:
        self.rows -= 1
        self.total = (self.total - int.from_bytes(digest, "big")) % _MODULUS

    def add(self, values: Sequence[Any]) -> bytes:
        digest = row_digest(values)
        self.add_digest(digest)
        return digest

    def add_digests(self, digests: Sequence[bytes]) -> None:
        """Add many row digests at once."""
        self.rows += len(digests)
        self.total = (self.total + sum(map(int.from_bytes, digests))) % _MODULUS

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Add every row, digested column-wise (ts24_migrate.core.rows.batch_digest), a bounded slice at a time."""
        from .batch_digest import row_digests  # imported here: batch_digest builds on this module

        if isinstance(rows, (list, tuple)):
            self.add_digests(row_digests(rows))
            return
        iterator = iter(rows)
        while chunk := list(islice(iterator, _ROWS_PER_SLICE)):
            self.add_digests(row_digests(chunk))

    def merge(self, other: TableFingerprint) -> None:
        self.rows += other.rows
        self.total = (self.total + other.total) % _MODULUS

    def hexdigest(self) -> str:
        return f"rows={self.rows};sum={self.total:064x}"

    @classmethod
    def parse(cls, text: str) -> TableFingerprint:
        rows_part, sum_part = text.split(";")
        return cls(rows=int(rows_part.removeprefix("rows=")), total=int(sum_part.removeprefix("sum="), 16))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TableFingerprint) and (self.rows, self.total) == (other.rows, other.total)
