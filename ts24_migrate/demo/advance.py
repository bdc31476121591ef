"""advance_site: the demo world moves on, as a TS24 server does while its dossiers drain.

In-flight dossiers progress (new HO_SO_LICH_SU rows; TRANG_THAI and
NGAY_CAP_NHAT updated; some finish with NGAY_TRA_KQ and SO_KET_QUA), one
forbidden receipt arrives (a new dossier received after the cut-over), and
some units that had not re-registered file 01/ĐK-GĐ on the new system.
Nothing else changes, and `AdvanceTruth` lists every change.

The world's clock is read back from the data: the latest timestamp of
HO_SO, HO_SO_LICH_SU and HT_NHAT_KY, rounded up to midnight. The generator
leaves the last log entry minutes before its "now", and each advance puts
one event on its last day, so the next advance starts where this one ended.
Awaiting-receipt dossiers (status 0) are never received (that would be
another forbidden receipt): the office refuses or cancels them, telling the
unit to file on the new portal.

Example::

    step = advance_site(legacy, target, Path("files"), days=7, seed=1)
    step.changed_dossiers, step.forbidden_receipt
    advance_site(legacy, target, Path("files"), days=1, seed=2, drain=True).in_flight_after   # 0
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from load.target_schema import re_registrations
from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.legacy.schema import (
    DM_COQUAN_BHXH,
    DM_DONVI,
    HO_SO,
    HO_SO_LICH_SU,
    HO_SO_TEP,
    HT_NGUOI_DUNG,
    HT_NHAT_KY,
    IN_FLIGHT_STATUSES,
)

from .attachments import AttachmentFolder, md5_hex, xml_content
from .dossiers import DOSSIER_ID_BASE
from .identifiers import is_valid_tax_code
from .names import HISTORY_NOTES
from .units import normalize_code
from .world import month_period, office_hours_moment, random_moment
from .writer import ChunkedInserter

PAGE_ROWS = 10_000
MAX_DAYS = 3650

# Next status of an in-flight dossier, with weights; receipt (0 -> 1) is absent on purpose.
_NEXT = {0: ((6, 7), (5, 3)), 1: ((2, 1),), 2: ((4, 55), (3, 25), (5, 20)), 3: ((2, 7), (6, 3))}
# While draining, every path ends: no new supplement requests.
_NEXT_DRAINING = {0: ((6, 7), (5, 3)), 1: ((2, 1),), 2: ((4, 8), (5, 2)), 3: ((2, 7), (6, 3))}
_TRANSFER_NOTE = "Đề nghị đơn vị nộp hồ sơ trên Cổng giao dịch điện tử mới"


@dataclass
class AdvanceTruth:
    seed: int
    days: int
    drain: bool
    started_at: dt.datetime  # the world's clock before
    world_now: dt.datetime  # after (unchanged when nothing happened)
    changed_dossiers: list[str] = field(default_factory=list)  # existing HO_SO rows updated
    finished_dossiers: list[str] = field(default_factory=list)  # of those, now in status 4, 5 or 6
    new_history_ids: list[str] = field(default_factory=list)
    forbidden_receipt: str | None = None  # new HO_SO row received after cut-over
    new_file_ids: list[str] = field(default_factory=list)  # HO_SO_TEP rows of the forbidden receipt
    new_files_on_disk: list[str] = field(default_factory=list)  # their DUONG_DAN
    new_reregistrations: list[str] = field(default_factory=list)  # normalized unit codes
    in_flight_after: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["world_now"] = self.world_now.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdvanceTruth:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["started_at"] = dt.datetime.fromisoformat(data["started_at"])
        values["world_now"] = dt.datetime.fromisoformat(data["world_now"])
        return cls(**values)

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> AdvanceTruth:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def world_clock(conn: Connection) -> dt.datetime:
    """The demo world's present: its latest timestamp, rounded up to midnight."""
    latest = [
        conn.execute(sa.select(sa.func.max(column))).scalar()
        for column in (HO_SO.c.NGAY_CAP_NHAT, HO_SO_LICH_SU.c.THOI_GIAN, HT_NHAT_KY.c.THOI_GIAN)
    ]
    moments = [m for m in latest if m is not None]
    if not moments:
        raise UsageError("the legacy database holds no dossiers or log entries: not a demo site")
    last = max(moments)
    midnight = dt.datetime.combine(last.date(), dt.time())
    return midnight if last == midnight else midnight + dt.timedelta(days=1)


def advance_site(
    legacy: Engine,
    target: Engine | None,
    attachments_dir: Path | None,
    *,
    days: int,
    seed: int,
    drain: bool = False,
    forbidden_receipt: bool | None = None,
) -> AdvanceTruth:
    """Move the demo world `days` days forward (see the module docstring).

    With `drain`, every in-flight dossier finishes and, unless
    `forbidden_receipt=True`, no new receipt arrives: the site is drained.
    """
    if not 1 <= days <= MAX_DAYS:
        raise UsageError(f"days must be between 1 and {MAX_DAYS}, not {days}")
    add_receipt = (not drain) if forbidden_receipt is None else forbidden_receipt
    if target is not None and re_registrations.name not in sa.inspect(target).get_table_names():
        # Checked before anything changes: a half-advanced world would be no demo at all.
        raise UsageError("the target has no re_registrations table: it is not a demo site's new system")
    with legacy.connect() as conn:
        start = world_clock(conn)
        next_history_id = (conn.execute(sa.select(sa.func.max(HO_SO_LICH_SU.c.ID))).scalar() or 0) + 1
        officers = [
            r[0]
            for r in conn.execute(
                sa.select(HT_NGUOI_DUNG.c.TEN_DANG_NHAP)
                .where(HT_NGUOI_DUNG.c.TRANG_THAI == 1)
                .order_by(HT_NGUOI_DUNG.c.TEN_DANG_NHAP)
            )
        ] or ["admin"]
    end = start + dt.timedelta(days=days)
    rng = random.Random(f"ts24-demo-advance:{seed}:{start.isoformat()}:{days}:{drain}")
    truth = AdvanceTruth(seed=seed, days=days, drain=drain, started_at=start, world_now=start)
    history = ChunkedInserter(legacy, HO_SO_LICH_SU, chunk_rows=PAGE_ROWS)
    latest_event: list[dt.datetime] = []

    progress_odds = 1.0 if drain else min(0.9, 0.15 + days / 20)
    last_id = None
    while True:
        page = _in_flight_page(legacy, last_id)
        if not page:
            break
        last_id = page[-1].ID_HO_SO
        updates = []
        for dossier in page:
            if rng.random() >= progress_odds:
                continue
            steps = _steps(rng, dossier.TRANG_THAI, drain)
            times = _moments(rng, start, end, len(steps))
            officer = dossier.CAN_BO_XU_LY or rng.choice(officers)
            previous = dossier.TRANG_THAI
            for status, moment in zip(steps, times):
                note = _TRANSFER_NOTE if previous == 0 else HISTORY_NOTES[status]
                history.add(
                    {
                        "ID": next_history_id,
                        "ID_HO_SO": dossier.ID_HO_SO,
                        "THOI_GIAN": moment,
                        "TRANG_THAI_CU": previous,
                        "TRANG_THAI_MOI": status,
                        "NGUOI_THUC_HIEN": officer,
                        "NOI_DUNG": note,
                    }
                )
                truth.new_history_ids.append(str(next_history_id))
                next_history_id += 1
                previous = status
            final, finished_at = steps[-1], times[-1]
            latest_event.append(finished_at)
            updates.append(
                {
                    "b_id": dossier.ID_HO_SO,
                    "b_status": final,
                    "b_updated": finished_at,
                    "b_officer": officer,
                    "b_result_at": finished_at if final in (4, 5) else dossier.NGAY_TRA_KQ,
                    "b_result_no": (
                        f"{dossier.ID_HO_SO - DOSSIER_ID_BASE}/{finished_at.year}/{dossier.MA_CQ:0>5}"
                        if final == 4
                        else dossier.SO_KET_QUA
                    ),
                }
            )
            truth.changed_dossiers.append(str(dossier.ID_HO_SO))
            if final not in IN_FLIGHT_STATUSES:
                truth.finished_dossiers.append(str(dossier.ID_HO_SO))
        history.flush()  # history first: a dossier's status never runs ahead of its history
        _update_dossiers(legacy, updates)
        if len(page) < PAGE_ROWS:
            break

    if add_receipt:
        latest_event.append(
            _forbidden_receipt(legacy, rng, truth, start, end, officers, next_history_id, attachments_dir)
        )
    elif latest_event:
        _anchor_last_day(legacy, truth, max(latest_event), end)
    if target is not None:
        _file_reregistrations(legacy, target, rng, truth, start, end)
    with legacy.connect() as conn:
        truth.in_flight_after = conn.execute(
            sa.select(sa.func.count()).select_from(HO_SO).where(HO_SO.c.TRANG_THAI.in_(IN_FLIGHT_STATUSES))
        ).scalar_one()
        truth.world_now = world_clock(conn)
    return truth


def _in_flight_page(legacy: Engine, after_id: int | None) -> list[sa.Row]:
    query = (
        sa.select(
            HO_SO.c.ID_HO_SO,
            HO_SO.c.TRANG_THAI,
            HO_SO.c.MA_CQ,
            HO_SO.c.CAN_BO_XU_LY,
            HO_SO.c.NGAY_TRA_KQ,
            HO_SO.c.SO_KET_QUA,
        )
        .where(HO_SO.c.TRANG_THAI.in_(IN_FLIGHT_STATUSES))
        .order_by(HO_SO.c.ID_HO_SO)
        .limit(PAGE_ROWS)
    )
    if after_id is not None:
        query = query.where(HO_SO.c.ID_HO_SO > after_id)
    with legacy.connect() as conn:
        return list(conn.execute(query))


def _steps(rng: random.Random, status: int, drain: bool) -> list[int]:
    """The statuses a dossier passes through: to the end when draining, else one to three steps."""
    table = _NEXT_DRAINING if drain else _NEXT
    limit = 6 if drain else rng.randint(1, 3)
    steps: list[int] = []
    while status in IN_FLIGHT_STATUSES and len(steps) < limit:
        choices = table[status]
        status = rng.choices([s for s, _ in choices], weights=[w for _, w in choices])[0]
        steps.append(status)
    if drain and status in IN_FLIGHT_STATUSES:  # the walk ran long: close it with a result
        steps.append(4)
    return steps


def _moments(rng: random.Random, start: dt.datetime, end: dt.datetime, count: int) -> list[dt.datetime]:
    span = int((end - start).total_seconds())
    offsets = sorted(rng.sample(range(1, span - 1), count))
    return [start + dt.timedelta(seconds=s) for s in offsets]


def _update_dossiers(legacy: Engine, updates: list[dict]) -> None:
    if not updates:
        return
    statement = (
        HO_SO.update()
        .where(HO_SO.c.ID_HO_SO == sa.bindparam("b_id"))
        .values(
            TRANG_THAI=sa.bindparam("b_status"),
            NGAY_CAP_NHAT=sa.bindparam("b_updated"),
            CAN_BO_XU_LY=sa.bindparam("b_officer"),
            NGAY_TRA_KQ=sa.bindparam("b_result_at"),
            SO_KET_QUA=sa.bindparam("b_result_no"),
        )
    )
    with legacy.begin() as conn:
        conn.execute(statement, updates)


def _anchor_last_day(legacy: Engine, truth: AdvanceTruth, latest: dt.datetime, end: dt.datetime) -> None:
    """Without a new receipt, move the latest update into the last day, so the clock reads `end` next time."""
    if latest >= end - dt.timedelta(days=1):
        return
    anchor = end - dt.timedelta(minutes=7)
    with legacy.begin() as conn:
        dossier_id = conn.execute(
            sa.select(HO_SO.c.ID_HO_SO)
            .where(HO_SO.c.NGAY_CAP_NHAT == latest)
            .order_by(HO_SO.c.ID_HO_SO.desc())
            .limit(1)
        ).scalar()
        conn.execute(HO_SO.update().where(HO_SO.c.ID_HO_SO == dossier_id).values(NGAY_CAP_NHAT=anchor))
    if str(dossier_id) not in truth.changed_dossiers:
        truth.changed_dossiers.append(str(dossier_id))


def _forbidden_receipt(
    legacy: Engine,
    rng: random.Random,
    truth: AdvanceTruth,
    start: dt.datetime,
    end: dt.datetime,
    officers: list[str],
    history_id: int,
    attachments_dir: Path | None,
) -> dt.datetime:
    """A new dossier received on the last day: TS24 should have refused it."""
    with legacy.connect() as conn:
        dossier_id = (conn.execute(sa.select(sa.func.max(HO_SO.c.ID_HO_SO))).scalar() or DOSSIER_ID_BASE) + 1
        file_id = (conn.execute(sa.select(sa.func.max(HO_SO_TEP.c.ID_TEP))).scalar() or 0) + 1
        units = conn.execute(sa.select(sa.func.count()).select_from(DM_DONVI)).scalar_one()
        unit = conn.execute(
            sa.select(DM_DONVI.c.MA_DV).order_by(DM_DONVI.c.MA_DV).offset(rng.randrange(units)).limit(1)
        ).scalar_one()
        office = conn.execute(sa.select(sa.func.min(DM_COQUAN_BHXH.c.MA_CQ))).scalar()
    last_day = (end - dt.timedelta(days=1)).date()
    received = office_hours_moment(rng, last_day)
    submitted = max(start + dt.timedelta(seconds=1), received - dt.timedelta(seconds=rng.randint(600, 2 * 86400)))
    month, year = month_period(received.date(), 1)
    officer = rng.choice(officers)
    dossier_no = f"{office}-{received.year}-{dossier_id}"
    updated = received + dt.timedelta(seconds=rng.randint(1, 300))
    content = xml_content(dossier_no, "600", f"{month:02d}/{year:04d}", unit, "D02-TS", "")
    relative = f"{received.year:04d}/{received.month:02d}/{dossier_id}_{file_id}.xml"
    on_disk = attachments_dir is not None
    with legacy.begin() as conn:
        conn.execute(
            HO_SO.insert().values(
                ID_HO_SO=dossier_id,
                SO_HO_SO=dossier_no,
                MA_DV=unit,
                MA_THU_TUC="600",
                KY_KE_KHAI=f"{month:02d}/{year:04d}",
                NGAY_NOP=submitted,
                NGAY_TIEP_NHAN=received,
                NGAY_HEN_TRA=(received + dt.timedelta(days=15)).date(),
                NGAY_TRA_KQ=None,
                TRANG_THAI=1,
                MA_CQ=office,
                CAN_BO_XU_LY=officer,
                SO_KET_QUA=None,
                GHI_CHU=None,
                NGAY_CAP_NHAT=updated,
            )
        )
        conn.execute(
            HO_SO_LICH_SU.insert(),
            [
                {
                    "ID": history_id,
                    "ID_HO_SO": dossier_id,
                    "THOI_GIAN": submitted,
                    "TRANG_THAI_CU": None,
                    "TRANG_THAI_MOI": 0,
                    "NGUOI_THUC_HIEN": f"DV_{normalize_code(unit)}",
                    "NOI_DUNG": HISTORY_NOTES[0],
                },
                {
                    "ID": history_id + 1,
                    "ID_HO_SO": dossier_id,
                    "THOI_GIAN": received,
                    "TRANG_THAI_CU": 0,
                    "TRANG_THAI_MOI": 1,
                    "NGUOI_THUC_HIEN": officer,
                    "NOI_DUNG": HISTORY_NOTES[1],
                },
            ],
        )
        conn.execute(
            HO_SO_TEP.insert().values(
                ID_TEP=file_id,
                ID_HO_SO=dossier_id,
                MA_TO_KHAI="D02-TS",
                TEN_TEP="Danh sách lao động tham gia BHXH, BHYT, BHTN.xml",
                LOAI_TEP="xml",
                NOI_DUNG=None if on_disk else content,
                DUONG_DAN=relative if on_disk else None,
                KICH_THUOC=len(content),
                MD5=md5_hex(content),
            )
        )
    if on_disk:
        assert attachments_dir is not None
        AttachmentFolder(Path(attachments_dir)).write(relative, content)
        truth.new_files_on_disk.append(relative)
    truth.forbidden_receipt = str(dossier_id)
    truth.new_history_ids += [str(history_id), str(history_id + 1)]
    truth.new_file_ids.append(str(file_id))
    return updated


def _file_reregistrations(
    legacy: Engine, target: Engine, rng: random.Random, truth: AdvanceTruth, start: dt.datetime, end: dt.datetime
) -> None:
    """About a fifth of the units still due to re-register file 01/ĐK-GĐ during these days."""
    due: dict[str, str | None] = {}
    with legacy.connect() as conn:
        rows = conn.execute(
            sa.select(DM_DONVI.c.MA_DV, DM_DONVI.c.MA_SO_THUE).where(
                DM_DONVI.c.PHUONG_THUC_GD.in_((1, 2)), DM_DONVI.c.TRANG_THAI == 1
            )
        )
        for code, tax in rows:
            valid_tax = tax.strip() if tax and is_valid_tax_code(tax.strip()) else None
            due.setdefault(normalize_code(code), valid_tax)
    with target.connect() as conn:
        done = {r[0] for r in conn.execute(sa.select(re_registrations.c.unit_code).distinct())}
    remaining = sorted(set(due) - done)
    if not remaining:
        return
    chosen = sorted(rng.sample(remaining, max(1, round(0.2 * len(remaining)))))
    with ChunkedInserter(target, re_registrations) as out:
        for code in chosen:
            out.add(
                {
                    "unit_code": code,
                    "tax_code": due[code],
                    "filed_on": random_moment(rng, start, end).date(),
                    "transaction_mode": "portal" if rng.random() < 0.7 else "ivan",
                    "form": "01/ĐK-GĐ",
                }
            )
    truth.new_reregistrations = chosen
