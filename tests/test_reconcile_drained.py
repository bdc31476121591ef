"""The drained verdict: it holds exactly when every dossier is finished and carried over."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from test_reconcile_support import SITE, sqlite_site

from backups.chain import chain_fingerprints
from backups.verify import manifest_parts
from extract.extraction import live_fingerprints
from load.bookkeeping import crosswalk
from load.target_schema import dossiers
from ts24_migrate.core.legacy.schema import HO_SO, IN_FLIGHT_STATUSES


@pytest.fixture
def site(tmp_path, sqlite_url):
    yield from sqlite_site(tmp_path, sqlite_url)


def _failing(result) -> list[str]:
    return [c.name for c in result.criteria if not c.holds]


def test_the_site_drains_exactly_when_every_dossier_is_finished_and_carried_over(site):
    first = site.reconcile()
    assert not first.drained
    # A delta run compares only what changed: it cannot vouch for every dossier, nor every row.
    assert _failing(first) == [
        "no dossier in flight",
        "every dossier finished and carried over",
        "every row compared with the chain",
    ]

    step = site.advance(days=5, seed=1, drain=True)
    assert step.in_flight_after == 0
    # One dossier (one the new system holds) is not finished after all: TS24 puts it back in processing.
    with site.target.connect() as conn:
        loaded = set(
            conn.execute(
                sa.select(crosswalk.c.legacy_key).where(
                    crosswalk.c.site_id == SITE, crosswalk.c.legacy_table == "HO_SO"
                )
            ).scalars()
        )
    dossier = int(next(k for k in step.finished_dossiers if k in loaded))
    with site.writable.begin() as conn:
        moment = conn.execute(sa.select(sa.func.max(HO_SO.c.NGAY_CAP_NHAT))).scalar() + dt.timedelta(minutes=5)
        conn.execute(HO_SO.update().where(HO_SO.c.ID_HO_SO == dossier).values(TRANG_THAI=2, NGAY_CAP_NHAT=moment))
    almost = site.reconcile()
    assert not almost.drained
    assert _failing(almost) == [
        "no dossier in flight",
        "every dossier finished and carried over",
        "every row compared with the chain",
    ]
    assert almost.in_flight.count == 1 and almost.mode == "delta"

    with site.writable.begin() as conn:  # it finishes
        conn.execute(
            HO_SO.update()
            .where(HO_SO.c.ID_HO_SO == dossier)
            .values(TRANG_THAI=4, NGAY_CAP_NHAT=moment + dt.timedelta(minutes=5))
        )
    # The next run finds nothing in flight, so it compares every row with the chain, and drains.
    drained = site.reconcile()
    assert drained.mode == "sweep" and drained.drained, _failing(drained)
    assert drained.carried.tables["HO_SO"]["updated"] == 1
    # The drained verdict hashed every part of every backup of the chain.
    assert drained.chain.parts_checked == sum(len(list(manifest_parts(m))) for m in site.chain())
    assert chain_fingerprints(site.chain()) == live_fingerprints(site.legacy, site.files)
    with site.writable.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(HO_SO).where(HO_SO.c.TRANG_THAI.in_(IN_FLIGHT_STATUSES))
            ).scalar()
            == 0
        )


def test_a_dossier_the_new_system_shows_otherwise_keeps_the_site_from_draining(site):
    site.advance(days=5, seed=1, drain=True)
    assert site.reconcile().in_flight.count == 0
    assert site.reconcile().drained
    with site.target.begin() as conn:  # someone edits a migrated dossier's status on the new system
        target_key = conn.execute(
            sa.select(crosswalk.c.target_key)
            .where(crosswalk.c.site_id == SITE, crosswalk.c.legacy_table == "HO_SO")
            .limit(1)
        ).scalar()
        conn.execute(dossiers.update().where(dossiers.c.dossier_id == int(target_key)).values(status="processing"))
    after = site.reconcile()
    assert not after.drained and _failing(after) == ["every dossier finished and carried over"]
    assert [d["kind"] for d in after.account.drift] == ["status"]


def test_a_receipt_after_cutover_is_reported_as_a_violation(site):
    step = site.advance(days=3, seed=9)
    result = site.reconcile()
    reported = {d.legacy_id for d in result.forbidden}
    assert str(step.forbidden_receipt) in {str(k) for k in reported}
    assert {str(k) for k in reported} == set(site.truth.received_after_cutover) | {step.forbidden_receipt}
    receipt = next(d for d in result.forbidden if str(d.legacy_id) == step.forbidden_receipt)
    assert receipt.received_at.date() >= site.truth.cutover
    assert result.summary()["received_after_cutover"] == len(reported)
