"""End to end on the demo site: back up, load, then validate; then tamper behind the pipeline's back.

A clean run must pass every target expectation, add up in the accounting and
show exact parity; a row deleted, another changed and one added in the target
afterwards must be named exactly by parity, and fail its verdict.
"""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from test_validation_data import NOW

from backups.backup import backup_site
from load import target_schema as ts
from load.bookkeeping import crosswalk
from load.site_load import load_site, prepare_target
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.legacy import schema as ls
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import generate_signing_key, load_signing_key
from ts24_migrate.demo import generate_site
from validation import (
    accounting_check,
    figures_from_stages,
    parity_for_site,
    recorded_counts,
    run_legacy_profile,
    run_target_suites,
)

pytestmark = pytest.mark.slow


def _target_key(conn, legacy_table: str, legacy_key: str) -> int:
    return int(
        conn.execute(
            sa.select(crosswalk.c.target_key).where(
                crosswalk.c.site_id == "demo",
                crosswalk.c.legacy_table == legacy_table,
                crosswalk.c.legacy_key == legacy_key,
            )
        ).scalar_one()
    )


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_demo_site_validates_clean_then_parity_names_the_tampered_keys(dialect, sqlite_url, request, tmp_path):
    legacy_url = sqlite_url("legacy")
    target = sa.create_engine(sqlite_url("target") if dialect == "sqlite" else request.getfixturevalue("pg_url"))
    prepare_target(target)
    truth = generate_site(
        sa.create_engine(legacy_url), tmp_path / "files", target=target, seed=42, scale=0.05, site_id="demo"
    )
    legacy = legacy_engine(Secret(legacy_url))
    keys = tmp_path / "keys"
    keys.mkdir()
    recipient = generate_custodian_identity(keys / "custodian.key")
    generate_signing_key(keys / "signing.key")
    backup = backup_site(
        legacy,
        tmp_path / "files",
        tmp_path / "backups",
        site_id="demo",
        run_id="run-1",
        recipients=[recipient],
        signing_key=load_signing_key(keys / "signing.key"),
    )
    load = load_site(
        legacy,
        target,
        site_id="demo",
        run_id="run-1",
        cutover=truth.cutover,
        attachments_dir=tmp_path / "files",
        reference_date=truth.world_now.date(),
    )

    # Accounting: every legacy table backed up in full, every mapped row loaded or rejected,
    # the backup and the load read the same content, and the bookkeeping agrees.
    figures = figures_from_stages(load.tables, backup.table_figures())
    rows = accounting_check(figures, recorded=recorded_counts(target, site_id="demo"))
    assert [(r.table, r.problems) for r in rows if not r.ok] == []
    assert {r.table: r.source for r in rows} == {t: v["rows"] for t, v in truth.tables.items()}
    assert {r.table for r in rows if r.mapped} == set(ls.MAPPED_TABLES)
    assert sum(r.rejected for r in rows if r.mapped) > 0  # the demo's dirt was rejected, and accounted

    # Parity: exact, one checksum per table.
    report = parity_for_site(target, site_id="demo")
    assert report.exact, report.to_dict()
    assert all(t.ranges_checked == 1 and t.lineage_rows == t.target_rows > 0 for t in report.tables.values())

    # Every target expectation holds.
    suites = run_target_suites(target, site_id="demo", docs_dir=tmp_path / "gx", as_of=truth.world_now)
    assert suites.success, [(s.table, [e.to_dict() for e in s.failed]) for s in suites.suites if not s.success]

    # Behind the pipeline's back: one row deleted, one changed, one added.
    with target.begin() as conn:
        history_legacy_key = conn.execute(
            sa.select(sa.func.min(crosswalk.c.legacy_key)).where(
                crosswalk.c.site_id == "demo", crosswalk.c.legacy_table == "HO_SO_LICH_SU"
            )
        ).scalar_one()
        deleted = _target_key(conn, "HO_SO_LICH_SU", history_legacy_key)
        unit_legacy_key = conn.execute(
            sa.select(sa.func.max(crosswalk.c.legacy_key)).where(
                crosswalk.c.site_id == "demo", crosswalk.c.legacy_table == "DM_DONVI"
            )
        ).scalar_one()
        changed = _target_key(conn, "DM_DONVI", unit_legacy_key)
        conn.execute(ts.dossier_history.delete().where(ts.dossier_history.c.history_id == deleted))
        conn.execute(ts.units.update().where(ts.units.c.unit_id == changed).values(phone="0999999999"))
        unit_code = conn.execute(sa.select(ts.units.c.unit_code).where(ts.units.c.unit_id == changed)).scalar_one()
        added = conn.execute(
            ts.dossiers.insert()
            .values(
                dossier_no="GHOST-1",
                unit_code=unit_code,
                procedure_code="600",
                submitted_at=NOW,
                status="done",
                source="ts24",
                updated_at=NOW,
            )
            .returning(ts.dossiers.c.dossier_id)
        ).scalar_one()

    report = parity_for_site(target, site_id="demo")
    assert not report.exact
    found = {
        (name, kind, d["target_key"], d["legacy_key"])
        for name, table in report.tables.items()
        for kind in ("missing", "extra", "changed")
        for d in getattr(table, kind)
    }
    assert found == {
        ("dossier_history", "missing", deleted, history_legacy_key),
        ("units", "changed", changed, unit_legacy_key),
        ("dossiers", "extra", added, None),
    }
    assert report.to_dict()["differences"] == 3
    # The legacy keys parity names are real rows of the legacy database.
    with legacy.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(ls.HO_SO_LICH_SU)
                .where(ls.HO_SO_LICH_SU.c.ID == int(history_legacy_key))
            ).scalar_one()
            == 1
        )
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(ls.DM_DONVI).where(ls.DM_DONVI.c.MA_DV == unit_legacy_key)
            ).scalar_one()
            == 1
        )
    target.dispose()


def test_legacy_profile_of_the_demo_site_finds_the_planted_dirt(sqlite_url, tmp_path):
    legacy_url = sqlite_url("legacy")
    truth = generate_site(sa.create_engine(legacy_url), tmp_path / "files", seed=42, scale=0.05, site_id="demo")
    profile = run_legacy_profile(legacy_engine(Secret(legacy_url)), docs_dir=tmp_path / "gx-legacy")
    assert profile.descriptive and not profile.success  # dirty, as planted; never a verdict
    planted = Counter((d["table"], d["kind"]) for d in truth.defects)

    def observed(table: str, description: str) -> int:
        (expectation,) = [e for e in profile.suite(table).expectations if e.description == description]
        return expectation.observed_value

    assert observed("DM_DONVI", "tax codes have a valid check digit") == planted["DM_DONVI", "tax_code_bad_check_digit"]
    orphans = {t: observed(t, "MA_DV names an existing DM_DONVI row") for t in ("NGUOI_LAO_DONG", "HO_SO")}
    assert sum(orphans.values()) == sum(n for (_, kind), n in planted.items() if kind == "orphan_unit_reference")
    dossier_orphans = sum(observed(t, "ID_HO_SO names an existing HO_SO row") for t in ("HO_SO_TEP", "HO_SO_LICH_SU"))
    assert dossier_orphans == sum(n for (_, kind), n in planted.items() if kind == "orphan_dossier_reference")
    (si_format,) = [e for e in profile.suite("NGUOI_LAO_DONG").failed if e.column == "MA_SO_BHXH"]
    assert si_format.unexpected_count == planted["NGUOI_LAO_DONG", "bad_social_insurance_no"]
    counts = {s.table: s.expectations[0].observed_value for s in profile.suites}
    assert counts == {t: v["rows"] for t, v in truth.tables.items()}
