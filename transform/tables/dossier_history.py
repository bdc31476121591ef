"""HO_SO_LICH_SU -> dossier_history."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..context import TransformContext
from ..mappings import DOSSIER_STATUSES
from .common import TableBatch

LEGACY_TABLE = "HO_SO_LICH_SU"
TARGET_TABLE = "dossier_history"
KEY_COLUMNS = ("ID",)
LEGACY_COLUMNS = ("ID", "ID_HO_SO", "THOI_GIAN", "TRANG_THAI_CU", "TRANG_THAI_MOI", "NGUOI_THUC_HIEN", "NOI_DUNG")
# Which target column each legacy column becomes.
COLUMN_MAP = {
    "ID_HO_SO": "legacy_dossier_id",
    "THOI_GIAN": "occurred_at",
    "TRANG_THAI_CU": "status_from",
    "TRANG_THAI_MOI": "status_to",
    "NGUOI_THUC_HIEN": "actor",
    "NOI_DUNG": "note",
}
OUTPUT_COLUMNS = ("legacy_dossier_id", "occurred_at", "status_from", "status_to", "actor", "note", "dq_flags")
# remember() reads nothing: a resumed load reads none of the history back.
REMEMBERED_COLUMNS: tuple[str, ...] = ()
# Whose remembered rows this table's transform consults: what a resumed load must seed before it.
CONSULTS = ("HO_SO",)  # the accepted dossiers (orphans)


def transform(tb: TableBatch) -> dict[str, list[Any]]:
    ids = tb.integers("ID")
    tb.reject_where("ID", [i is None for i in ids], "KEY_MISSING", "history id {value!r} is not a number")
    dossier_ids = tb.dossier_ids()
    occurred = tb.datetimes("THOI_GIAN")
    tb.require("THOI_GIAN", occurred)
    status_to = [DOSSIER_STATUSES.get(s) for s in tb.integers("TRANG_THAI_MOI")]
    tb.reject_where(
        "TRANG_THAI_MOI", [s is None for s in status_to], "STATUS_INVALID", "new status {value!r} is not one of 0-6"
    )
    status_from = [DOSSIER_STATUSES.get(s) for s in tb.integers("TRANG_THAI_CU")]
    tb.reject_where(
        "TRANG_THAI_CU",
        [raw is not None and s is None for raw, s in zip(tb.raw("TRANG_THAI_CU"), status_from)],
        "STATUS_INVALID",
        "previous status {value!r} is not one of 0-6",
    )
    return {
        "legacy_dossier_id": dossier_ids,
        "occurred_at": occurred,
        "status_from": status_from,
        "status_to": status_to,
        "actor": tb.plain("NGUOI_THUC_HIEN"),
        "note": tb.text("NOI_DUNG"),
    }


def remember(ctx: TransformContext, rows: pd.DataFrame) -> None:
    """Nothing depends on history entries, and their integer keys cannot collide."""
