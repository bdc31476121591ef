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

import pytest
import sqlalchemy as sa
from test_reconcile_support import SITE, make_site, reconcile_refused_by_the_new_system

from reconcile.carry_over import carry_over
from ts24_migrate.core.legacy.schema import HO_SO, HO_SO_LICH_SU

STEPS_PER_TICK = 100


class Work:
    """VM steps (in hundreds) and statements on the engines watched."""

    def __init__(self) -> None:
        self.ticks = 0
        self.statements = 0

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

        def executed(*_args):
            self.statements += 1

        for engine in engines:
            engine.dispose()  # connections checked out from now on are watched
            for name, listener in (("checkout", checkout), ("checkin", checkin), ("before_cursor_execute", executed)):
                sa.event.listen(engine if name == "before_cursor_execute" else engine.pool, name, listener)
                listeners.append((engine if name == "before_cursor_execute" else engine.pool, name, listener))
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


def _carry_over_work(site) -> tuple[Work, dict]:
    _queue_one_change(site)
    assert {t: len(k) for t, k in site.state.pending(SITE).items()} == {"HO_SO": 1, "HO_SO_LICH_SU": 1}
    with Work().watching(site.legacy, site.target) as work:
        result = carry_over(
            site.legacy,
            site.target,
            site.state,
            site_id=SITE,
            run_id=str(uuid.uuid4()),
            cutover=site.truth.cutover,
            attachments_dir=site.files,
        )
    assert not site.state.pending(SITE)
    return work, result.tables


@pytest.mark.slow
def test_carrying_one_changed_dossier_over_costs_the_same_on_a_site_eight_times_larger(tmp_path, sqlite_url):
    measured = {}
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
        finally:
            site.dispose()
    (small, small_tables), (large, large_tables) = measured[0.05], measured[0.4]
    print(f"VM steps (hundreds) {small.ticks} -> {large.ticks}; statements {small.statements} -> {large.statements}")
    for tables in (small_tables, large_tables):  # the change was carried over, exactly
        assert tables["HO_SO"]["updated"] == 1 and tables["HO_SO_LICH_SU"]["inserted"] == 1
    assert large.statements == small.statements
    # A scan of one of the site's tables would make the large site's count several times the small one's.
    assert large.ticks <= small.ticks * 1.25 + 5, (small.ticks, large.ticks)
