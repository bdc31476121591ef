"""Per-row bookkeeping of one batch: the first blocking reason, and flags.

Checks run in a fixed order and report defects here. The first reject a row
gets is its reason; later rejects are kept only to be listed in its message,
so a row with several defects is rejected once. Flags accumulate on rows that
stay accepted; a flag about one value also keeps which field it was, the
original value and the value loaded (`flags_frame`), so an auditor sees what
a normalization or repair did, and the original is kept beside the row.

Example::

    verdicts = RowVerdicts("DM_DONVI", ["A1", "A2"])
    verdicts.reject(1, "TRANSACTION_MODE_INVALID", "PHUONG_THUC_GD", 9, "mode 9 is not 1, 2 or 3")
    verdicts.flag(0, "CODE_NORMALIZED", "MA_DV", "a1 ", "A1")
    verdicts.accepted()          # [0]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from .normalize import display
from .reason_codes import REASON_CODES, is_reject

REJECT_COLUMNS = ("legacy_table", "legacy_key", "reason_code", "field", "original_value", "message")
FLAG_COLUMNS = ("legacy_table", "legacy_key", "flag_code", "field", "original_value", "loaded_value")
_UNSET = object()


class RowVerdicts:
    def __init__(self, legacy_table: str, legacy_keys: Sequence[str]):
        self.legacy_table = legacy_table
        self.legacy_keys = legacy_keys
        self._rejects: dict[int, list[Any]] = {}  # row -> [code, field, original, message, others]
        self._flags: dict[int, list[str]] = {}
        # (row, code, field) -> (original, loaded), as display text
        self._details: dict[tuple[int, str, str], tuple[str | None, str | None]] = {}

    def __len__(self) -> int:
        return len(self.legacy_keys)

    def is_rejected(self, row: int) -> bool:
        return row in self._rejects

    def reject(self, row: int, code: str, field: str | None, original: Any, message: str) -> None:
        if not is_reject(code):
            raise ValueError(f"{code} is a flag, not a reject reason")
        existing = self._rejects.get(row)
        if existing is None:
            self._rejects[row] = [code, field, display(original), message, []]
        else:
            existing[4].append(f"{code} on {field}" if field else code)

    def flag(self, row: int, code: str, field: str, original: Any, loaded: Any = _UNSET) -> None:
        """Flag `row` with `code` about the value of `field`: its legacy `original` and the
        value `loaded` (the same when nothing was changed). Every flag names its value, so
        the flagged values (flags_frame) account for every flagged row."""
        if REASON_CODES[code][0] != "flag":
            raise ValueError(f"{code} is a reject reason, not a flag")
        flags = self._flags.setdefault(row, [])
        if code not in flags:
            flags.append(code)
        self._details[(row, code, field)] = (display(original), display(original if loaded is _UNSET else loaded))

    def flag_rows(
        self, rows: Iterable[int], code: str, field: str, originals: Sequence[Any], loaded: Sequence[Any]
    ) -> None:
        """Flag each of `rows`; `originals` and `loaded` are the whole column's values (indexed by row)."""
        for row in rows:
            self.flag(row, code, field, originals[row], loaded[row])

    def accepted(self) -> list[int]:
        return [i for i in range(len(self.legacy_keys)) if i not in self._rejects]

    def flags_text(self, row: int) -> str | None:
        flags = self._flags.get(row)
        return ";".join(flags) if flags else None

    def flags_frame(self) -> pd.DataFrame:
        """The flagged values of the accepted rows (FLAG_COLUMNS), in row order."""
        records = [
            (self.legacy_table, self.legacy_keys[row], code, field, original, loaded)
            for (row, code, field), (original, loaded) in sorted(self._details.items(), key=lambda i: i[0][0])
            if row not in self._rejects
        ]
        return pd.DataFrame.from_records(records, columns=list(FLAG_COLUMNS)).astype(object)

    def rejects_frame(self) -> pd.DataFrame:
        records = []
        for row in sorted(self._rejects):
            code, field, original, message, others = self._rejects[row]
            if others:
                message = f"{message} (also: {', '.join(others)})"
            records.append((self.legacy_table, self.legacy_keys[row], code, field, original, message))
        return pd.DataFrame.from_records(records, columns=list(REJECT_COLUMNS)).astype(object)
