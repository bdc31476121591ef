"""Delta runs on a real demo site (SQLite): exactly the changed rows, an equal target, an exact chain."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_reconcile_support import (
    SITE,
    compared_tables,
    fresh_migration,
    reconcile_refused_by_the_new_system,
    sqlite_site,
    table_contents,
    twin_site,
)

from backups.chain import chain_fingerprints, restore_chain, verify_chain
from backups.increment import increments_dir
from backups.verify import verify_backup
from extract.extraction import live_fingerprints
from load.ledger import table_figures
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.legacy.schema import HO_SO, HO_SO_LICH_SU
from ts24_migrate.core.secrets import Secret
from ts24_migrate.demo.advance import advance_site


@pytest.fixture
def site(tmp_path, sqlite_url):
    yield from sqlite_site(tmp_path, sqlite_url)


def test_a_run_after_advancing_reads_exactly_the_changed_rows_and_equals_a_fresh_migration(site, tmp_path, sqlite_url):
    step = site.advance(days=7, seed=1)
    assert step.changed_dossiers and step.forbidden_receipt and step.new_history_ids

    result = site.reconcile()

    assert result.mode == "delta"
    changed = sorted(result.changed_keys("HO_SO"))
    assert changed == sorted(f"[{k}]" for k in [*step.changed_dossiers, step.forbidden_receipt])
    assert sorted(result.changed_keys("HO_SO_LICH_SU")) == sorted(f"[{k}]" for k in step.new_history_ids)
    assert sorted(result.changed_keys("HO_SO_TEP")) == sorted(f"[{k}]" for k in step.new_file_ids)
    untouched = {
        "DM_COQUAN_BHXH",
        "DM_DONVI",
        "NGUOI_LAO_DONG",
        "HT_NGUOI_DUNG",
        "HT_NHAT_KY",
        "IMPORT_TAM",
        "TS24_CAU_HINH",
    }
    assert all(result.tables[name]["new"] + result.tables[name]["changed"] == 0 for name in untouched)
    assert result.files["new"] == len(step.new_files_on_disk) and result.files["changed"] == 0
    increment = site.chain()[-1]
    assert increment.data["kind"] == "incremental"
    assert increment.data["parent"]["manifest_fingerprint"] == site.chain()[-2].fingerprint
    assert increment.tables["HO_SO"]["rows"] == len(step.changed_dossiers) + 1
    assert increment.attachments["files"] == len(step.new_files_on_disk)
    carried = result.carried.tables["HO_SO"]
    # Every changed dossier is updated in the new system, or still rejected with its reason.
    assert carried["updated"] + carried["rejected"] == len(step.changed_dossiers)
    assert carried["inserted"] == 1 and carried["queued"] == len(step.changed_dossiers) + 1
    assert not result.carried.blocked and not result.account.drift
    # Invariant 1 for the chain: legacy rows = rows the chain holds; mapped: = loaded + rejected.
    assert all(row["ok"] for row in result.accounting), result.accounting
    assert {row["table"]: row["backed_up"] for row in result.accounting} == {
        name: t["live_rows"] for name, t in result.tables.items()
    }

    # The same site, generated and advanced again elsewhere, then migrated in one go.
    twin = tmp_path / "twin"
    writable, target, truth = twin_site(
        twin, legacy_url=sqlite_url("twin-legacy"), target_url=sqlite_url("twin-target")
    )
    try:
        twin_step = advance_site(writable, target, twin / "files", days=7, seed=1)
        assert twin_step.changed_dossiers == step.changed_dossiers
        fresh_migration(twin, writable, target, sqlite_url("twin-legacy"), truth)
        for table in compared_tables():
            assert table_contents(site.target, table) == table_contents(target, table), table.name
        with site.target.connect() as mine, target.connect() as theirs:
            for legacy_table in ("HO_SO", "HO_SO_LICH_SU", "HO_SO_TEP"):
                ours, fresh = table_figures(mine, SITE, legacy_table), table_figures(theirs, SITE, legacy_table)
                for figure in ("source_rows", "loaded", "rejected", "conflicts", "crosswalk_rows"):
                    assert ours[figure] == fresh[figure], (legacy_table, figure)
    finally:
        writable.dispose()
        target.dispose()


def test_a_second_run_without_change_reads_nothing_new_and_changes_nothing(site):
    site.advance(days=3, seed=5)
    site.reconcile()
    links = site.state.chain(SITE)
    before = {t.name: table_contents(site.target, t) for t in compared_tables()}

    again = site.reconcile()

    assert again.increment is None and again.rows_changed == 0
    assert all(t["new"] == t["changed"] == t["deleted"] == 0 for t in again.tables.values())
    assert again.files["new"] == again.files["changed"] == again.files["deleted"] == 0
    assert again.files["hashed"] == 0  # stamps unchanged: no file was even read
    assert again.carried.carried == 0
    assert site.state.chain(SITE) == links
    assert {t.name: table_contents(site.target, t) for t in compared_tables()} == before
    folders = sorted(p.name for p in increments_dir(site.backups, SITE).iterdir())
    assert folders == [link.backup_id for link in links[1:]]


def test_restore_of_full_backup_plus_increments_equals_the_advanced_legacy(site, tmp_path, sqlite_url):
    site.advance(days=7, seed=1)
    site.reconcile()
    site.advance(days=4, seed=2)
    with site.writable.begin() as conn:  # TS24 deletes a history row and an import row
        conn.execute(HO_SO_LICH_SU.delete().where(HO_SO_LICH_SU.c.ID == 3))
        conn.execute(sa.text("DELETE FROM IMPORT_TAM WHERE rowid = (SELECT min(rowid) FROM IMPORT_TAM)"))
    removed = sorted(p for p in site.files.rglob("*") if p.is_file())[0]
    removed.unlink()
    result = site.reconcile()
    assert result.tables["HO_SO_LICH_SU"]["deleted"] == 1 and result.tables["HO_SO_LICH_SU"]["key_check"]
    assert result.tables["IMPORT_TAM"]["mode"] == "full"
    assert result.files["deleted"] == 1
    manifests = site.chain()
    assert len(manifests) == 4  # full, baseline, two increments
    assert "@deleted:HO_SO_LICH_SU" in manifests[-1].tables and "@deleted:@attachments" in manifests[-1].tables

    live = live_fingerprints(site.legacy, site.files)
    assert chain_fingerprints(manifests) == live
    report = restore_chain(
        manifests,
        site.identity,
        store_engine(Secret(sqlite_url("scratch"))),
        tmp_path / "restored-files",
        public_key_b64=site.signing.public_key_b64,
        live=site.legacy,
        live_attachments=site.files,
    )
    assert report.ok, report.problems
    assert {name: t["fingerprint"] for name, t in report.tables.items()} == {
        name: fp for name, fp in live.items() if name != "@attachments"
    }
    assert report.files["fingerprint"] == live["@attachments"]
    # Each increment is a backup like any other: signed, and every part decrypts and adds up.
    for manifest in manifests[1:]:
        checked = verify_backup(manifest.path, public_key_b64=site.signing.public_key_b64, identity=site.identity)
        assert checked.ok, checked.problems


def test_a_changed_row_without_change_column_is_caught_by_a_sweep(site):
    with site.writable.begin() as conn:  # an edit that no NGAY_CAP_NHAT shows
        conn.execute(sa.text("UPDATE TS24_CAU_HINH SET GIA_TRI = 'sửa tay' WHERE KHOA = 'PHIEN_BAN'"))
    assert site.reconcile(sweep=False).tables["TS24_CAU_HINH"]["changed"] == 0
    swept = site.reconcile(sweep=True)
    assert swept.mode == "sweep" and swept.tables["TS24_CAU_HINH"]["changed"] == 1
    assert chain_fingerprints(site.chain()) == live_fingerprints(site.legacy, site.files)


def test_an_edit_on_the_new_system_side_and_a_blocked_row_are_reported_as_drift(site):
    step = site.advance(days=7, seed=1)
    dossier = int(step.changed_dossiers[0])
    with site.writable.begin() as conn:  # the latest version cannot be loaded: no unit any more
        conn.execute(HO_SO.update().where(HO_SO.c.ID_HO_SO == dossier).values(MA_DV="KHONG-CO"))
    result = site.reconcile()
    assert [b["legacy_key"] for b in result.carried.blocked] == [str(dossier)]
    assert result.carried.blocked[0]["reason_code"] == "ORPHAN_UNIT"
    assert {d["legacy_id"]: d["kind"] for d in result.account.drift} == {str(dossier): "status"}
    assert site.state.pending(SITE) == {"HO_SO": [f"[{dossier}]"]}  # retried until the row is fixed
    assert all(row["ok"] for row in result.accounting)  # the older version still counts as loaded


def test_a_run_killed_before_its_carry_over_is_completed_by_the_next(site):
    step = site.advance(days=7, seed=1)
    reconcile_refused_by_the_new_system(site)  # once the increment is chained
    assert len(site.state.pending(SITE)["HO_SO"]) == len(step.changed_dossiers) + 1
    killed = site.state.open_run(SITE)
    result = site.reconcile()
    # The delta was chained by the killed run: no new increment, the killed run's reported and finished.
    assert result.increment["written_by_run"] == killed.run_id and result.completes_run == killed.run_id
    assert result.increment["backup_id"] == site.state.chain(SITE)[-1].backup_id == killed.backup_id
    assert result.carried.tables["HO_SO"]["queued"] == len(step.changed_dossiers) + 1
    assert not site.state.pending(SITE) and not result.account.drift


def test_an_unsigned_increment_left_by_a_killed_run_is_discarded(site):
    leftover = increments_dir(site.backups, SITE) / "20250101T000000Z-dead00"
    (leftover / "parts" / "HO_SO").mkdir(parents=True)
    (leftover / "parts" / "HO_SO" / "part-000001.parquet.age").write_bytes(b"half")
    site.advance(days=2, seed=3)
    result = site.reconcile()
    assert not leftover.exists()
    assert verify_chain(site.chain(), public_key_b64=site.signing.public_key_b64, links=site.state.chain(SITE)).ok
    assert result.increment is not None
