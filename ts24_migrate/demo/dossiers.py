"""HO_SO, HO_SO_TEP and HO_SO_LICH_SU: dossiers with their files and history.

One pass over the dossiers writes all three tables, so that each dossier's
files and status history agree with its current status and dates, and the
pass holds one chunk of each table at a time.

The timeline of a dossier follows the office's rules: submitted (NGAY_NOP),
received in office hours (NGAY_TIEP_NHAN, strictly before the cut-over day
unless the receipt is a planted violation, then on a day strictly after it),
a promised date (NGAY_HEN_TRA) 5-60 days later, transitions in increasing
time, a result (NGAY_TRA_KQ) for status 4 and 5; everything before the
world's now. The history rows are exactly the transitions that lead to the
current status.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from ts24_migrate.core.legacy.schema import HO_SO, HO_SO_LICH_SU, HO_SO_TEP, IN_FLIGHT_STATUSES

from . import dirty_data as dd
from .attachments import (
    DISK_STEMS,
    FILE_TITLES,
    FORMS_BY_PROCEDURE,
    AttachmentFolder,
    corrupted,
    md5_hex,
    pdf_content,
    xml_content,
)
from .names import DOSSIER_NOTES, HISTORY_NOTES
from .units import UnitDirectory, normalize_code
from .world import World, month_period, office_hours_moment, random_moment
from .writer import ChunkedInserter, Progress

DOSSIER_ID_BASE = 1_000_000
# Dossiers purged from TS24 long ago: files and history rows still pointing at them are orphans.
ORPHAN_DOSSIER_BASE = 500_000

STATUS_WEIGHTS = ((0, 4), (1, 5), (2, 9), (3, 4), (4, 63), (5, 8), (6, 7))
PROCEDURE_WEIGHTS = (
    ("600", 30),
    ("600a", 14),
    ("600b", 14),
    ("630a", 20),
    ("630b", 5),
    ("602", 6),
    ("612", 6),
    ("616", 5),
)
# Status paths that end in each status (one is drawn per dossier).
STATUS_PATHS = {
    0: ((0,),),
    1: ((0, 1),),
    2: ((0, 1, 2), (0, 1, 2, 3, 2)),
    3: ((0, 1, 2, 3),),
    4: ((0, 1, 2, 4), (0, 1, 2, 3, 2, 4)),
    5: ((0, 1, 2, 5), (0, 5)),
    6: ((0, 6), (0, 1, 2, 3, 6)),
}

_LIKELY_DUPLICATE = "role:likely_duplicate"
_ATTACHMENT_MISSING = "role:attachment_missing"
_ATTACHMENT_MD5_MISMATCH = "role:attachment_md5_mismatch"

_DOSSIER_DEFECT_SLOTS = (
    (dd.TEXT_TCVN3, "GHI_CHU", 0.005),
    (dd.TEXT_VNI, "GHI_CHU", 0.005),
    (dd.TEXT_NFD, "GHI_CHU", 0.005),
    (dd.EMPTY_STRING_AS_NULL, "GHI_CHU", 0.01),
    (dd.ORPHAN_UNIT_REFERENCE, "MA_DV", 0.003),
    (dd.RECEIVED_AFTER_CUTOVER, "NGAY_TIEP_NHAN", 0.003),
    (_ATTACHMENT_MISSING, "DUONG_DAN", 0.001),
    (_ATTACHMENT_MD5_MISMATCH, "MD5", 0.001),
)


def likely_duplicate_count(world: World) -> int:
    """How many in-flight dossiers get a twin filed on the new portal."""
    return dd.count_for(0.01, world.sizes.dossiers)


@dataclass
class DuplicateSource:
    """A legacy in-flight dossier that the new portal received again after cut-over."""

    dossier_id: int
    unit_code: str  # normalized
    procedure: str
    period: str  # yyyy-mm


@dataclass
class DossierSummary:
    dossiers: int = 0
    files: int = 0
    history: int = 0
    by_status: Counter = field(default_factory=Counter)
    in_flight: int = 0
    overdue_in_flight: int = 0
    received_after_cutover: list[int] = field(default_factory=list)
    duplicate_sources: list[DuplicateSource] = field(default_factory=list)
    files_on_disk: int = 0
    files_in_db: int = 0
    missing_on_disk: list[int] = field(default_factory=list)
    md5_mismatch: list[int] = field(default_factory=list)
    folder: AttachmentFolder | None = None


@dataclass
class _Timeline:
    statuses: tuple[int, ...]
    times: list[dt.datetime]
    received_at: dt.datetime | None
    due: dt.date | None
    result_at: dt.datetime | None
    updated_at: dt.datetime


_Value = TypeVar("_Value")


def _weighted(rng: random.Random, weighted: tuple[tuple[_Value, float], ...]) -> _Value:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _result_number(index: int, timeline: _Timeline, office: str) -> str:
    """The number of a finished dossier's result (a finished dossier always has its result date)."""
    assert timeline.result_at is not None
    return f"{index + 1}/{timeline.result_at.year}/{office:0>5}"


def _increasing(rng: random.Random, after: dt.datetime, before: dt.datetime, count: int) -> list[dt.datetime]:
    """`count` whole-second moments, strictly increasing, in (after, before)."""
    span = max(count + 1, int((before - after).total_seconds()))
    offsets = sorted(rng.sample(range(1, span), count)) if span > count else list(range(1, count + 1))
    return [after + dt.timedelta(seconds=s) for s in offsets]


def _timeline(
    rng: random.Random, world: World, status: int, *, late_receipt: bool, due_in_future: bool | None = None
) -> _Timeline:
    """`due_in_future` forces the promised date after (True) or before (False) the world's now."""
    path = rng.choice(STATUS_PATHS[status])
    cutover, now = world.cutover_at, world.now
    last_allowed = now - dt.timedelta(hours=2)
    if late_receipt:
        submitted = random_moment(rng, cutover - dt.timedelta(days=6), cutover + dt.timedelta(days=20))
        first_day = max(submitted.date() + dt.timedelta(days=1), world.cutover + dt.timedelta(days=1))
        received = office_hours_moment(rng, first_day + dt.timedelta(days=rng.randint(0, 5)))
    else:
        recent = status in IN_FLIGHT_STATUSES or rng.random() < 0.06
        if recent:  # in flight, or finished while the site drains
            submitted = random_moment(rng, cutover - dt.timedelta(days=75), cutover - dt.timedelta(days=1))
        else:
            submitted = random_moment(rng, world.history_start, cutover - dt.timedelta(days=60))
        received = None
        if len(path) > 1 and path[1] == 1:
            latest = min(submitted + dt.timedelta(days=3), cutover - dt.timedelta(minutes=1))
            received = random_moment(rng, submitted + dt.timedelta(minutes=10), latest)
    times = [submitted]
    if len(path) > 1:
        if received is not None:
            times.append(received)
        else:  # refused or cancelled before any receipt
            times.append(
                min(
                    random_moment(rng, submitted + dt.timedelta(hours=1), submitted + dt.timedelta(days=5)),
                    last_allowed,
                )
            )
        rest = len(path) - 2
        if rest:
            horizon = min(times[-1] + dt.timedelta(days=rng.randint(3, 60)), last_allowed)
            times.extend(_increasing(rng, times[-1], horizon, rest))
    due = None
    if received is not None:
        due = (received + dt.timedelta(days=rng.randint(5, 60))).date()
        if due_in_future is not None and (due >= now.date()) != due_in_future:
            due = (
                (now + dt.timedelta(days=rng.randint(1, 30))).date()
                if due_in_future
                else (received + dt.timedelta(days=5)).date()
            )
    result_at = times[-1] if path[-1] in (4, 5) else None
    updated = min(times[-1] + dt.timedelta(seconds=rng.randint(0, 600)), now - dt.timedelta(seconds=1))
    return _Timeline(path, times, received, due, result_at, updated)


def _period(rng: random.Random, world: World, submitted: dt.datetime) -> tuple[int, int]:
    """Declaration period (month, year): the month of submission or one before; before the cut-over month."""
    month, year = month_period(submitted.date(), rng.choice((0, 1, 1, 2)))
    if (year, month) >= (world.cutover.year, world.cutover.month):
        month, year = month_period(world.cutover, 1)
    return month, year


def write_dossiers(
    legacy: Engine,
    world: World,
    units: UnitDirectory,
    officers: list[str],
    attachments_dir: Path,
    defects: dd.DefectLog,
    *,
    progress: Progress | None = None,
) -> DossierSummary:
    n = world.sizes.dossiers
    duplicates = len(units.reserved_for_duplicates)
    slots = (*_DOSSIER_DEFECT_SLOTS, (_LIKELY_DUPLICATE, "MA_DV", duplicates / n))
    # Dossiers 0-7 carry no planted role: 0 has the guaranteed binary blobs, 1-7 one of each status.
    plan = dd.DefectPlan.for_table(world.rng("plan:HO_SO"), n, slots, exclude=range(8))
    rng = world.rng("HO_SO")
    summary = DossierSummary(folder=AttachmentFolder(Path(attachments_dir)))
    reserved_units = iter(units.reserved_for_duplicates)
    offices = world.offices
    office_weights = [3 if code == world.office_code else 1 for code in offices]
    today = world.now.date()
    file_id = history_id = orphan_units = 0
    with (
        ChunkedInserter(legacy, HO_SO, progress=progress, expected_rows=n) as dossier_out,
        ChunkedInserter(legacy, HO_SO_TEP, progress=progress, expected_rows=round(1.5 * n)) as file_out,
        ChunkedInserter(legacy, HO_SO_LICH_SU, progress=progress, expected_rows=4 * n) as history_out,
    ):
        for index in range(n):
            dossier_id = DOSSIER_ID_BASE + index + 1
            kind, column = plan.at(index) or (None, None)
            late = kind == dd.RECEIVED_AFTER_CUTOVER
            if late:
                status = rng.choice((1, 1, 2, 2, 3, 4))
            elif kind == _LIKELY_DUPLICATE:
                status = rng.choice((0, 1, 2, 2, 3))
            else:
                status = _weighted(rng, STATUS_WEIGHTS)
                if 1 <= index <= 7:  # every status exists, whatever the seed
                    status = index - 1
            # Dossiers 2 and 3 (in flight) are one overdue and one not, whatever the seed.
            timeline = _timeline(rng, world, status, late_receipt=late, due_in_future={2: False, 3: True}.get(index))
            month, year = _period(rng, world, timeline.times[0])
            procedure = _weighted(rng, PROCEDURE_WEIGHTS)
            office = rng.choices(offices, weights=office_weights)[0]
            officer = rng.choice(officers)
            if kind == _LIKELY_DUPLICATE:
                unit_index = next(reserved_units)
                unit_stored = units.stored_code(unit_index)
                summary.duplicate_sources.append(
                    DuplicateSource(dossier_id, normalize_code(unit_stored), procedure, f"{year:04d}-{month:02d}")
                )
            elif kind == dd.ORPHAN_UNIT_REFERENCE:
                unit_stored = units.orphan_code(10**6 + orphan_units)  # apart from the persons' orphans
                orphan_units += 1
            else:
                unit_stored = units.stored_code(units.random_referable(rng))
            note = rng.choice(DOSSIER_NOTES) if rng.random() < 0.3 else None
            dossier_no = f"{office}-{timeline.times[0].year}-{dossier_id}"
            row: dict[str, Any] = {
                "ID_HO_SO": dossier_id,
                "SO_HO_SO": dossier_no,
                "MA_DV": unit_stored,
                "MA_THU_TUC": procedure,
                "KY_KE_KHAI": f"{month:02d}/{year:04d}",
                "NGAY_NOP": timeline.times[0],
                "NGAY_TIEP_NHAN": timeline.received_at,
                "NGAY_HEN_TRA": timeline.due,
                "NGAY_TRA_KQ": timeline.result_at,
                "TRANG_THAI": status,
                "MA_CQ": office,
                "CAN_BO_XU_LY": officer if len(timeline.statuses) > 1 else None,
                "SO_KET_QUA": _result_number(index, timeline, office) if status == 4 else None,
                "GHI_CHU": note,
                "NGAY_CAP_NHAT": timeline.updated_at,
            }
            _plant_dossier_defect(row, kind, column, rng, defects, summary)
            dossier_out.add(row)
            _count_dossier(summary, status, timeline, today)

            unit_label = normalize_code(unit_stored)
            previous = None
            for new_status, moment in zip(timeline.statuses, timeline.times):
                history_id += 1
                history_out.add(
                    {
                        "ID": history_id,
                        "ID_HO_SO": dossier_id,
                        "THOI_GIAN": moment,
                        "TRANG_THAI_CU": previous,
                        "TRANG_THAI_MOI": new_status,
                        "NGUOI_THUC_HIEN": f"DV_{unit_label}" if previous is None else officer,
                        "NOI_DUNG": HISTORY_NOTES[new_status],
                    }
                )
                previous = new_status
                summary.history += 1

            file_count = 2 if index == 0 else rng.choice((1, 2))
            for position in range(file_count):
                file_id += 1
                form = FORMS_BY_PROCEDURE[procedure][position]
                is_xml = position == 0
                content = (
                    xml_content(dossier_no, procedure, row["KY_KE_KHAI"], unit_stored, form, note or "")
                    if is_xml
                    else pdf_content(rng)
                )
                planted_here = position == 0 and kind in (_ATTACHMENT_MISSING, _ATTACHMENT_MD5_MISMATCH)
                special = kind if planted_here else None
                on_disk = special is not None or (index != 0 and rng.random() < 0.5)
                file_out.add(
                    _file_row(
                        rng,
                        summary,
                        defects,
                        file_id,
                        dossier_id,
                        form,
                        is_xml,
                        content,
                        on_disk,
                        special,
                        timeline.times[0],
                    ),
                    blob_bytes=len(content),
                )
                summary.files += 1

        # Leftovers of dossiers deleted long ago: one file and one history row each.
        for k in range(dd.count_for(0.003, n)):
            orphan_id = ORPHAN_DOSSIER_BASE + k + 1
            moment = random_moment(rng, world.history_start, world.cutover_at - dt.timedelta(days=400))
            file_id += 1
            content = xml_content(f"CU-{orphan_id}", "600", "01/2020", "", "D02-TS", "")
            row = _file_row(
                rng,
                summary,
                defects,
                file_id,
                orphan_id,
                "D02-TS",
                True,
                content,
                on_disk=False,
                special=None,
                submitted=moment,
            )
            defects.add(HO_SO_TEP.name, file_id, "ID_HO_SO", dd.ORPHAN_DOSSIER_REFERENCE, orphan_id)
            file_out.add(row, blob_bytes=len(content))
            summary.files += 1
            history_id += 1
            history_out.add(
                {
                    "ID": history_id,
                    "ID_HO_SO": orphan_id,
                    "THOI_GIAN": moment,
                    "TRANG_THAI_CU": None,
                    "TRANG_THAI_MOI": 0,
                    "NGUOI_THUC_HIEN": "admin",
                    "NOI_DUNG": HISTORY_NOTES[0],
                }
            )
            defects.add(HO_SO_LICH_SU.name, history_id, "ID_HO_SO", dd.ORPHAN_DOSSIER_REFERENCE, orphan_id)
            summary.history += 1
    summary.dossiers = n
    return summary


def _plant_dossier_defect(
    row: dict, kind: str | None, column: str | None, rng: random.Random, defects: dd.DefectLog, summary: DossierSummary
) -> None:
    key = row["ID_HO_SO"]
    if kind in dd.ENCODING_KINDS:
        planted, clean = dd.plant_text(kind, lambda: rng.choice(DOSSIER_NOTES))
        row[column] = planted
        defects.add(HO_SO.name, key, column, kind, planted, clean)
    elif kind == dd.EMPTY_STRING_AS_NULL:
        row[column] = ""
        defects.add(HO_SO.name, key, column, kind, "")
    elif kind == dd.ORPHAN_UNIT_REFERENCE:
        defects.add(HO_SO.name, key, column, kind, row[column])
    elif kind == dd.RECEIVED_AFTER_CUTOVER:
        defects.add(HO_SO.name, key, column, kind, row[column].isoformat(sep=" "))
        summary.received_after_cutover.append(key)


def _count_dossier(summary: DossierSummary, status: int, timeline: _Timeline, today: dt.date) -> None:
    summary.by_status[status] += 1
    if status in IN_FLIGHT_STATUSES:
        summary.in_flight += 1
        if timeline.due is not None and timeline.due < today:
            summary.overdue_in_flight += 1


def _file_row(
    rng: random.Random,
    summary: DossierSummary,
    defects: dd.DefectLog,
    file_id: int,
    dossier_id: int,
    form: str,
    is_xml: bool,
    content: bytes,
    on_disk: bool,
    special: str | None,
    submitted: dt.datetime,
) -> dict:
    extension = "xml" if is_xml else "pdf"
    title = FILE_TITLES[form]
    row = {
        "ID_TEP": file_id,
        "ID_HO_SO": dossier_id,
        "MA_TO_KHAI": form,
        "TEN_TEP": f"{title}.{extension}",
        "LOAI_TEP": extension,
        "NOI_DUNG": None,
        "DUONG_DAN": None,
        "KICH_THUOC": len(content),
        "MD5": md5_hex(content),
    }
    if not on_disk:
        row["NOI_DUNG"] = content
        summary.files_in_db += 1
        return row
    stem = f"{dossier_id}_{file_id}"
    if rng.random() < 0.35:
        stem = f"{stem}_{rng.choice(DISK_STEMS)}"
    relative = f"{submitted.year:04d}/{submitted.month:02d}/{stem}.{extension}"
    row["DUONG_DAN"] = relative
    summary.files_on_disk += 1
    assert summary.folder is not None
    if special == _ATTACHMENT_MISSING:
        summary.missing_on_disk.append(file_id)
        defects.add(HO_SO_TEP.name, file_id, "DUONG_DAN", dd.ATTACHMENT_MISSING, relative)
    elif special == _ATTACHMENT_MD5_MISMATCH:
        damaged = corrupted(content)
        summary.folder.write(relative, damaged)
        summary.md5_mismatch.append(file_id)
        defects.add(HO_SO_TEP.name, file_id, "MD5", dd.ATTACHMENT_MD5_MISMATCH, row["MD5"], md5_hex(damaged))
    else:
        summary.folder.write(relative, content)
    return row
