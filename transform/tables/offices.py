"""DM_COQUAN_BHXH -> offices."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from ..context import TransformContext
from ..mappings import OFFICE_CODE_LENGTHS, OFFICE_LEVELS
from .common import TableBatch, claim_key

LEGACY_TABLE = "DM_COQUAN_BHXH"
TARGET_TABLE = "offices"
KEY_COLUMNS = ("MA_CQ",)
LEGACY_COLUMNS = ("MA_CQ", "TEN_CQ", "CAP", "MA_TINH")
# Which target column each legacy column becomes.
COLUMN_MAP = {"MA_CQ": "office_code", "TEN_CQ": "name", "CAP": "level", "MA_TINH": "province_code"}
OUTPUT_COLUMNS = ("office_code", "name", "level", "province_code")
# What remember() reads of an accepted row (besides legacy_key): a resumed load reads back only these.
REMEMBERED_COLUMNS = ("office_code",)
# Whose remembered rows this table's transform consults: what a resumed load must seed before it.
CONSULTS = ("DM_COQUAN_BHXH",)  # its own codes (duplicates)

_OFFICE_CODE = re.compile(r"[0-9]{2}(?:[0-9]{2})?")


def transform(tb: TableBatch) -> dict[str, list[Any]]:
    v, ctx = tb.verdicts, tb.ctx
    codes = tb.code("MA_CQ")
    names = tb.text("TEN_CQ")
    levels_raw = tb.integers("CAP")
    provinces = tb.code("MA_TINH")
    levels: list[str | None] = []
    for i, code in enumerate(codes):
        if code is None:
            v.reject(i, "KEY_MISSING", "MA_CQ", tb.raw("MA_CQ")[i], "office code is empty")
        elif not _OFFICE_CODE.fullmatch(code):
            v.reject(
                i, "OFFICE_CODE_INVALID", "MA_CQ", tb.raw("MA_CQ")[i], f"office code {code!r} is not 2 or 4 digits"
            )
    tb.require("TEN_CQ", names)
    for i, raw_level in enumerate(levels_raw):
        level = OFFICE_LEVELS.get(raw_level)
        levels.append(level)
        code = codes[i]
        if level is None:
            v.reject(i, "OFFICE_LEVEL_INVALID", "CAP", tb.raw("CAP")[i], "CAP is not 1 (province) or 2 (district)")
        elif code is not None and len(code) != OFFICE_CODE_LENGTHS[level]:
            v.reject(
                i,
                "OFFICE_LEVEL_INVALID",
                "CAP",
                tb.raw("CAP")[i],
                f"a {level} office has a {OFFICE_CODE_LENGTHS[level]}-digit code, not {code!r}",
            )
    seen = ctx.keys_of(LEGACY_TABLE)
    seen.warm(codes)
    for i, code in enumerate(codes):
        if code is not None and not v.is_rejected(i):  # (a row without a code is rejected already)
            claim_key(seen, i, code, tb, v, column="MA_CQ", noun="office")
    return {"office_code": codes, "name": names, "level": levels, "province_code": provinces}


def remember(ctx: TransformContext, rows: pd.DataFrame) -> None:
    keys = ctx.keys_of(LEGACY_TABLE)
    for code, legacy_key in zip(rows["office_code"], rows["legacy_key"]):
        keys.setdefault(code, legacy_key)
        ctx.known_office_codes.add(code)
