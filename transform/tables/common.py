"""The column-level steps every table module uses, bound to one batch.

`TableBatch` holds the batch's legacy columns (as Python lists, by upper-case
legacy name), its verdicts and the run context; its methods clean a column
and report what they did (flags, rejects, text-repair counts) in one place,
so every table treats blanks, codes and text the same way.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from ts24_migrate.core.key_store import KeyStore
from ts24_migrate.core.legacy.text_repair import AMBIGUOUS, NFD, SUSPECT, TCVN3, VNI
from ts24_migrate.core.rows.fingerprint import row_digest

from ..columns import changed_rows, clean_text_column, normalize_code_column, only_of_type
from ..context import TransformContext
from ..normalize import as_int, strip_blanks
from ..verdicts import RowVerdicts

_REPAIR_FLAGS: dict[str | None, str] = {  # looked up with a value's detected encoding, None included
    TCVN3: "TEXT_REPAIRED_TCVN3",
    VNI: "TEXT_REPAIRED_VNI",
    NFD: "TEXT_REPAIRED_NFD",
    AMBIGUOUS: "TEXT_ENCODING_AMBIGUOUS",
    SUSPECT: "TEXT_ENCODING_SUSPECT",
}


def legacy_key_text(values: Sequence[Any]) -> str:
    """A legacy key as text: composite keys joined with '|'."""
    return "|".join("" if v is None else str(v) for v in values)


def legacy_key_texts(
    key_columns: Sequence[Sequence[Any]],
    row: Callable[[int], Sequence[Any]],
    rows: int,
    null_keys_seen: Counter[str] | None = None,
) -> list[str]:
    """legacy_key_text of every row, from the key's columns; a key holding NULL gets
    null_key_text of the whole row (`row(i)`: row i's values in the table's column order).

    `null_keys_seen` counts the NULL keys given so far, when the rows of one table come in
    several calls: the second of two identical rows is told apart from the first by its
    rank. Column-wise, because it runs on every row read: a one-column key needs no join.
    """
    if not key_columns:
        return [""] * rows
    if len(key_columns) == 1:
        keys = ["" if v is None else str(v) for v in key_columns[0]]
        holding_null = [i for i, v in enumerate(key_columns[0]) if v is None]
    else:
        keys = [legacy_key_text(parts) for parts in zip(*key_columns)]
        holding_null = [i for i, parts in enumerate(zip(*key_columns)) if None in parts]
    seen: Counter[str] = Counter() if null_keys_seen is None else null_keys_seen
    for i in holding_null:  # told apart by their content, then by their rank among identical rows
        content_key = null_key_text(row(i))
        seen[content_key] += 1
        keys[i] = content_key if seen[content_key] == 1 else f"{content_key}#{seen[content_key]}"
    return keys


def null_key_text(row: Sequence[Any]) -> str:
    """The legacy key, as text, of a row whose key holds NULL (SQLite lets a key column hold it).

    Several such rows may share a table and no key tells them apart; their content
    does: 'NULL#' and the start of the row's digest (ts24_migrate.core.rows.fingerprint.row_digest over
    the row's values in the table's column order). Rows identical in every column also
    get their rank in the table's read order (legacy_key_texts): 'NULL#...#2', '#3'.
    """
    return "NULL#" + row_digest(row).hex()[:16]


class TableBatch:
    def __init__(
        self,
        legacy_table: str,
        batch: pa.RecordBatch,
        key_columns: Sequence[str],
        required_columns: Sequence[str],
        ctx: TransformContext,
        python_columns: Sequence[Sequence[Any]] | None = None,
        legacy_keys: Sequence[str] | None = None,
    ):
        """`python_columns`, when the caller has them (the rows the batch was made from, by
        column), are the batch's values already: converting them back from Arrow is spared.
        `legacy_keys`, when the caller has them (legacy_key_texts over the whole table), are
        the rows' keys; else they are made from this batch alone."""
        self.legacy_table = legacy_table
        self.ctx = ctx
        self.names = [name.upper() for name in batch.schema.names]
        missing = [c for c in required_columns if c not in self.names]
        if missing:
            raise ValueError(f"{legacy_table} batch lacks legacy columns {', '.join(missing)}")
        if python_columns is None:
            python_columns = [column.to_pylist() for column in batch.columns]
        elif len(python_columns) != len(self.names) or any(len(c) != batch.num_rows for c in python_columns):
            raise ValueError(f"{legacy_table}: the Python columns do not match the batch")
        self.columns: dict[str, list[Any]] = {name: list(values) for name, values in zip(self.names, python_columns)}
        self.n = batch.num_rows
        if legacy_keys is None:
            legacy_keys = legacy_key_texts([self.columns[c] for c in key_columns], self._row, self.n)
        elif len(legacy_keys) != self.n:
            raise ValueError(f"{legacy_table}: {len(legacy_keys)} legacy keys for {self.n} rows")
        self.legacy_keys = list(legacy_keys)
        self.verdicts = RowVerdicts(legacy_table, self.legacy_keys)
        self.text_repairs: Counter[tuple[str, str, str]] = Counter()

    def _row(self, i: int) -> list[Any]:
        return [self.columns[name][i] for name in self.names]

    def raw(self, name: str) -> list[Any]:
        return self.columns[name]

    # --- cleaning steps ----------------------------------------------------------
    def text(self, name: str) -> list[str | None]:
        """Free text: trimmed, runs of spaces/tabs made one space (line breaks kept), blank -> NULL,
        repaired to NFC; flags (with the original value) and counts what it found."""
        raw = self.columns[name]
        # Column-wise: only values that are neither plain ASCII nor composed Unicode are looked at.
        repaired, detected, blanks, trimmed, examined = clean_text_column(raw)
        self.verdicts.flag_rows(blanks, "EMPTY_AS_NULL", name, raw, repaired)
        self.verdicts.flag_rows(trimmed, "WHITESPACE_TRIMMED", name, raw, repaired)
        for encoding, count in Counter(detected).items():
            if encoding is not None:
                self.text_repairs[(self.legacy_table, name, encoding)] += count
        for i in examined:
            flag = _REPAIR_FLAGS.get(detected[i])
            if flag:
                self.verdicts.flag(i, flag, name, raw[i], repaired[i])
        return repaired

    def plain(self, name: str) -> list[Any]:
        """A value kept as it is, except strings trimmed and blank -> NULL (both flagged)."""
        raw = self.columns[name]
        values, blanks = strip_blanks(raw)
        self.verdicts.flag_rows(blanks, "EMPTY_AS_NULL", name, raw, values)
        self.verdicts.flag_rows(changed_rows(raw, values, blanks), "WHITESPACE_TRIMMED", name, raw, values)
        return values

    def code(self, name: str, case: str = "upper", *, flag: bool = True) -> list[str | None]:
        """A code: trimmed, re-cased, blank -> NULL; flags CODE_NORMALIZED (unless `flag` is
        False: a checksum's case is no defect) and EMPTY_AS_NULL."""
        raw = self.columns[name]
        codes, changed, blanks = normalize_code_column(raw, case=case)
        if flag:
            self.verdicts.flag_rows(changed, "CODE_NORMALIZED", name, raw, codes)
        self.verdicts.flag_rows(blanks, "EMPTY_AS_NULL", name, raw, codes)
        return codes

    def integers(self, name: str) -> list[int | None]:
        values = self.columns[name]
        if only_of_type(values, int):  # as drivers hand over integer columns: nothing to convert
            return list(values)
        return [as_int(v) for v in values]

    def datetimes(self, name: str) -> list[dt.datetime | None]:
        values = self.columns[name]
        if only_of_type(values, dt.datetime):
            return list(values)
        return [as_datetime(v) for v in values]

    # --- rejects -------------------------------------------------------------------
    def require(self, name: str, values: Sequence[Any]) -> None:
        """Reject rows where a value the new system needs is missing."""
        for i, value in enumerate(values):
            if value is None:
                self.verdicts.reject(
                    i, "REQUIRED_MISSING", name, self.columns[name][i], f"{name} is empty; the new system requires it"
                )

    def clear_unknown(self, name: str, codes: list[str | None], known: KeyStore, flag: str) -> list[str | None]:
        """`codes` (of column `name`) with those that refer to nothing accepted cleared (NULL),
        their rows flagged `flag`: the row loads without the broken link."""
        known.warm(codes)
        # each distinct code looked up once: a chunk repeats its units and offices
        unknown = {code for code in set(codes) if code is not None and code not in known}
        for i in [i for i, code in enumerate(codes) if code in unknown]:
            codes[i] = None
            self.verdicts.flag(i, flag, name, self.columns[name][i], None)
        return codes

    def dossier_ids(self, name: str = "ID_HO_SO") -> list[str | None]:
        """The dossier each row belongs to (its id as text); rows whose dossier was not accepted
        (unknown, or rejected itself) are rejected ORPHAN_DOSSIER."""
        ids = [None if d is None else str(d) for d in self.integers(name)]
        known = self.ctx.known_dossier_ids
        known.warm(ids)
        unknown = {dossier_id for dossier_id in set(ids) if dossier_id not in known}  # once per dossier
        for i in [i for i, dossier_id in enumerate(ids) if dossier_id in unknown]:
            self.verdicts.reject(
                i,
                "ORPHAN_DOSSIER",
                name,
                self.columns[name][i],
                f"dossier {self.columns[name][i]!r} is not an accepted dossier",
            )
        return ids

    def reject_where(self, name: str, bad: Sequence[bool], code: str, message: str) -> None:
        for i, is_bad in enumerate(bad):
            if is_bad:
                self.verdicts.reject(i, code, name, self.columns[name][i], message.format(value=self.columns[name][i]))


def as_text(value: Any) -> str | None:
    """Text as text; bytes a driver hands over for a text column are decoded (UTF-8, else Windows-1252,
    which is how legacy bytes look anyway), other values written out."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")
    return str(value)


def as_datetime(value: Any) -> dt.datetime | None:
    """Legacy DATETIME values as datetime (drivers hand them over as datetime; text is parsed)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.min)
    if isinstance(value, str) and value.strip():
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if value is None or isinstance(value, dt.date):
        return value
    parsed = as_datetime(value)
    return parsed.date() if parsed else None


def claim_key(
    seen: KeyStore, i: int, key: str, tb: TableBatch, verdicts: RowVerdicts, *, column: str, noun: str
) -> bool:
    """Give row `i` its normalized `key` unless another accepted row holds it already.

    The first row in key order keeps the key; a later one (e.g. `ab123 ` after
    `AB123`) is rejected DUPLICATE_KEY. Returns whether row `i` holds the key.
    """
    first = seen.get(key)
    if first is not None and first != tb.legacy_keys[i]:
        verdicts.reject(
            i, "DUPLICATE_KEY", column, tb.raw(column)[i], f"{noun} {key!r} is already loaded from legacy key {first!r}"
        )
        return False
    seen[key] = tb.legacy_keys[i]
    return True
