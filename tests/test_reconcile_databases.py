"""Reconcile on the production-like pair: a legacy MariaDB over ODBC, the new system and the
control store on PostgreSQL."""

from __future__ import annotations

import pytest
from test_reconcile_support import make_site

from backups.chain import chain_fingerprints, restore_chain
from extract.extraction import live_fingerprints
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.secrets import Secret


@pytest.mark.mariadb
@pytest.mark.postgres
@pytest.mark.slow
def test_odbc_legacy_and_postgresql_target_reconcile_and_restore_exactly(tmp_path, mariadb_database, pg_database):
    site = make_site(
        tmp_path / "site", legacy_url=mariadb_database(), target_url=pg_database(), control_url=pg_database()
    )
    scratch = store_engine(Secret(pg_database()))
    try:
        step = site.advance(days=7, seed=1)
        result = site.reconcile()
        assert sorted(result.changed_keys("HO_SO")) == sorted(
            f"[{k}]" for k in [*step.changed_dossiers, step.forbidden_receipt]
        )
        assert sorted(result.changed_keys("HO_SO_LICH_SU")) == sorted(f"[{k}]" for k in step.new_history_ids)
        assert not result.account.drift and all(row["ok"] for row in result.accounting)
        assert site.reconcile().increment is None

        live = live_fingerprints(site.legacy, site.files)
        assert chain_fingerprints(site.chain()) == live
        report = restore_chain(
            site.chain(),
            site.identity,
            scratch,
            tmp_path / "restored",
            public_key_b64=site.signing.public_key_b64,
            live=site.legacy,
            live_attachments=site.files,
        )
        assert report.ok, report.problems
    finally:
        scratch.dispose()
        site.dispose()
