"""A reconcile's carry-over costs what changed, not what the site holds (measured as work, not time).

The work is SQLite's own count of virtual-machine steps (sqlite3's progress handler) on the
legacy and target connections, plus the statements executed: a query that reads a whole
table (a scan of the crosswalk, say) costs steps in proportion to the table; one that goes
through an index costs a few steps per row it returns. One changed dossier carried over on
a site eight times larger must cost about the same.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from test_reconcile_support import SITE, make_site, reconcile_refused_by_the_new_system

from load.bookkeeping import crosswalk
from reconcile import carry_over as carry_over_module
from reconcile.carry_over import carry_over
from reconcile.findings import dossier_account
from reconcile.state import key_text, pending
from ts24_migrate.core.legacy.schema import HO_SO, HO_SO_LICH_SU

STEPS_PER_TICK = 100


class Work:
    """VM steps (in hundreds) and statements on the engines watched."""

    def __init__(self) -> None:
        self.ticks = 0
        self.statements = 0
        self.texts: list[str] = []
        self.commits = 0

    def _tick(self) -> int:
        self.ticks += 1
        return 0  # go on

    @contextmanager
    def watching(self, *engines: sa.Engine) -> Iterator[Work]:
        listeners = []

        def checkout(dbapi, _record, _proxy):
            dbapi.set_progress_handler(self._tick, STEPS_PER_TICK)

        def checkin(dbapi, _record):
            dbapi.set_progress_handler(None, STEPS_PER_TICK)

        def executed(_conn, _cursor, statement, *_args):
            self.statements += 1
            self.texts.append(statement)

        def committed(_conn):
            self.commits += 1

        for engine in engines:
            engine.dispose()  # connections checked out from now on are watched
            for name, listener in (
                ("checkout", checkout),
                ("checkin", checkin),
                ("before_cursor_execute", executed),
                ("commit", committed),
            ):
                watched = engine.pool if name in ("checkout", "checkin") else engine
                sa.event.listen(watched, name, listener)
                listeners.append((watched, name, listener))
        try:
            yield self
        finally:
            for target, name, listener in listeners:
                sa.event.remove(target, name, listener)
            for engine in engines:
                engine.dispose()


def _change_one_dossier(writable: sa.Engine) -> int:
    """One dossier finishes on TS24: new status, new change time, one history row."""
    with writable.begin() as conn:
        dossier, status = conn.execute(
            sa.select(HO_SO.c.ID_HO_SO, HO_SO.c.TRANG_THAI).order_by(HO_SO.c.ID_HO_SO).limit(1).offset(7)
        ).one()
        moment = conn.execute(sa.select(sa.func.max(HO_SO.c.NGAY_CAP_NHAT))).scalar() + dt.timedelta(hours=1)
        history = conn.execute(sa.select(sa.func.max(HO_SO_LICH_SU.c.ID))).scalar() + 1
        conn.execute(HO_SO.update().where(HO_SO.c.ID_HO_SO == dossier).values(TRANG_THAI=4, NGAY_CAP_NHAT=moment))
        conn.execute(
            HO_SO_LICH_SU.insert().values(
                ID=history,
                ID_HO_SO=dossier,
                THOI_GIAN=moment,
                TRANG_THAI_CU=status,
                TRANG_THAI_MOI=4,
                NGUOI_THUC_HIEN="test",
                NOI_DUNG=None,
            )
        )
    return dossier


def _queue_one_change(site) -> None:
    """A reconcile reads and chains the change, then the new system refuses writes: the changed
    rows wait in the carry-over queue, where the next carry-over takes them from."""
    _change_one_dossier(site.writable)
    reconcile_refused_by_the_new_system(site)


def _watched_carry_over(site, *engines: sa.Engine) -> tuple[Work, Any]:
    """The carry-over of what the site's queue holds, with the work on `engines` (default: legacy and target)."""
    with Work().watching(*(engines or (site.legacy, site.target))) as work:
        result = carry_over(
            site.legacy,
            site.target,
            site.state,
            site_id=SITE,
            run_id=str(uuid.uuid4()),
            cutover=site.truth.cutover,
            attachments_dir=site.files,
        )
    return work, result


def _carry_over_work(site) -> tuple[Work, dict]:
    _queue_one_change(site)
    assert {t: len(k) for t, k in site.state.pending(SITE).items()} == {"HO_SO": 1, "HO_SO_LICH_SU": 1}
    work, result = _watched_carry_over(site)
    assert not site.state.pending(SITE)
    return work, result.tables


def _account_work(site) -> Work:
    """The drift check of ten watched dossiers (the changed one among them), as a delta run makes it.

    Ten, not one: from a few keys on, SQLite weighs a walk of another index against the key lookups."""
    with site.writable.connect() as conn:
        watched = list(conn.execute(sa.select(HO_SO.c.ID_HO_SO).order_by(HO_SO.c.ID_HO_SO).limit(10)).scalars())
    with Work().watching(site.legacy, site.target) as work:
        with site.legacy.connect() as legacy, site.target.connect() as target:
            account = dossier_account(legacy, target, site.state, site_id=SITE, only=watched)
    assert account.dossiers == 10 and account.current + account.rejected == 10 and not account.drift, account
    return work


@pytest.mark.slow
def test_carrying_one_changed_dossier_over_costs_the_same_on_a_site_eight_times_larger(tmp_path, sqlite_url):
    measured = {}
    accounts = {}
    for scale in (0.05, 0.4):
        site = make_site(
            tmp_path / f"site-{scale}",
            legacy_url=sqlite_url(f"legacy{scale}"),
            target_url=sqlite_url(f"target{scale}"),
            control_url=sqlite_url(f"control{scale}"),
            scale=scale,
        )
        try:
            measured[scale] = _carry_over_work(site)
            accounts[scale] = _account_work(site)
        finally:
            site.dispose()
    (small, small_tables), (large, large_tables) = measured[0.05], measured[0.4]
    print(f"VM steps (hundreds) {small.ticks} -> {large.ticks}; statements {small.statements} -> {large.statements}")
    for tables in (small_tables, large_tables):  # the change was carried over, exactly
        assert tables["HO_SO"]["updated"] == 1 and tables["HO_SO_LICH_SU"]["inserted"] == 1
    assert large.statements == small.statements
    # A scan of one of the site's tables would make the large site's count several times the small one's.
    assert large.ticks <= small.ticks * 1.25 + 5, (small.ticks, large.ticks)
    # So would checking the changed dossier against the new system by walking the crosswalk's
    # (target table, target key) index instead of looking its key up.
    small_account, large_account = accounts[0.05], accounts[0.4]
    print(f"drift check VM steps (hundreds) {small_account.ticks} -> {large_account.ticks}")
    assert large_account.statements == small_account.statements
    assert large_account.ticks <= small_account.ticks * 1.25 + 5, (small_account.ticks, large_account.ticks)


def _change_dossiers(writable: sa.Engine, count: int) -> None:
    """The first `count` dossiers finish on TS24: new status, new change time, one history row each."""
    with writable.begin() as conn:
        chosen = conn.execute(sa.select(HO_SO.c.ID_HO_SO, HO_SO.c.TRANG_THAI).order_by(HO_SO.c.ID_HO_SO).limit(count))
        chosen = chosen.all()
        moment = conn.execute(sa.select(sa.func.max(HO_SO.c.NGAY_CAP_NHAT))).scalar() + dt.timedelta(hours=1)
        history = conn.execute(sa.select(sa.func.max(HO_SO_LICH_SU.c.ID))).scalar() + 1
        conn.execute(
            HO_SO.update()
            .where(HO_SO.c.ID_HO_SO == sa.bindparam("b_id"))
            .values(TRANG_THAI=4, NGAY_CAP_NHAT=sa.bindparam("b_at")),
            [{"b_id": d, "b_at": moment + dt.timedelta(seconds=i)} for i, (d, _s) in enumerate(chosen)],
        )
        conn.execute(
            HO_SO_LICH_SU.insert(),
            [
                {
                    "ID": history + i,
                    "ID_HO_SO": d,
                    "THOI_GIAN": moment + dt.timedelta(seconds=i),
                    "TRANG_THAI_CU": status,
                    "TRANG_THAI_MOI": 4,
                    "NGUOI_THUC_HIEN": "test",
                    "NOI_DUNG": None,
                }
                for i, (d, status) in enumerate(chosen)
            ],
        )


@pytest.mark.slow
def test_the_carry_over_merges_each_table_once_whatever_the_number_of_changed_rows(tmp_path, sqlite_url):
    """600 changed dossiers (two key lists of 500) are merged in one set-based pass per table, in one
    target transaction: the merge's statements (stage, plan, writes, bookkeeping, ledger chunk) run
    once, as for one changed dossier; only the lookups by key list grow (one more list per table)."""
    site = make_site(
        tmp_path / "site",
        legacy_url=sqlite_url("legacy"),
        target_url=sqlite_url("target"),
        control_url=sqlite_url("control"),
        scale=0.4,
    )
    try:
        one, _tables = _carry_over_work(site)
        _change_dossiers(site.writable, 600)
        reconcile_refused_by_the_new_system(site)
        assert {t: len(k) for t, k in site.state.pending(SITE).items()} == {"HO_SO": 600, "HO_SO_LICH_SU": 600}
        many, result = _watched_carry_over(site)
    finally:
        site.dispose()
    figures = result.tables
    print(
        f"statements: one changed dossier {one.statements}, 600 changed dossiers {many.statements}; "
        f"commits {one.commits} and {many.commits}"
    )
    assert figures["HO_SO"]["updated"] + figures["HO_SO"]["rejected"] == 600, figures
    assert figures["HO_SO_LICH_SU"]["inserted"] + figures["HO_SO_LICH_SU"]["rejected"] == 600, figures
    assert not site.state.pending(SITE)
    # The merge plans each table once (one plan table per pass), and the commits do not grow.
    plans = [[t for t in work.texts if t.startswith("INSERT INTO ts24_plan_")] for work in (one, many)]
    assert len(plans[0]) == len(plans[1]) == 2, plans
    assert many.commits == one.commits, (one.commits, many.commits)
    # A second key list per table adds its lookups (legacy read, crosswalk, rejects and conflicts
    # before and after, the context's keys), about ten statements; a second pass adds some thirty.
    assert many.statements <= one.statements + 2 * 12, (one.statements, many.statements)


def test_dossier_files_are_carried_over_in_passes_bounded_by_their_content(tmp_path, sqlite_url, monkeypatch):
    """A backlog of dossier files is not held in memory at once: passes are cut by file content, as
    the load cuts its chunks (here one byte, so a pass per file), and every file still arrives."""
    site = make_site(
        tmp_path / "site",
        legacy_url=sqlite_url("legacy"),
        target_url=sqlite_url("target"),
        control_url=sqlite_url("control"),
    )
    try:
        with site.target.connect() as conn:
            loaded = conn.execute(
                sa.select(crosswalk.c.legacy_key)
                .where(crosswalk.c.site_id == SITE, crosswalk.c.legacy_table == "HO_SO_TEP")
                .order_by(crosswalk.c.legacy_key)
                .limit(5)
            ).scalars()
            files = [int(k) for k in loaded]
        assert len(files) == 5
        # Queued as an earlier run's increment leaves them (their rows did not change since the load).
        with site.state.engine.begin() as conn:
            conn.execute(
                pending.insert(),
                [
                    {"site_id": SITE, "table_name": "HO_SO_TEP", "row_key": key_text([f]), "backup_id": "b"}
                    for f in files
                ],
            )
        monkeypatch.setattr(carry_over_module, "CARRY_CONTENT_BYTES", 1)
        work, result = _watched_carry_over(site, site.target)
        assert result.tables["HO_SO_TEP"]["updated"] == 5, result.tables
        assert not result.gone and not result.blocked
        assert not site.state.pending(SITE)
        stages = [t for t in work.texts if t.startswith("INSERT INTO ts24_stage_dossier_files")]
        assert len(stages) == 5, len(stages)
    finally:
        site.dispose()
