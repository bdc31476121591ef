"""migrate-fleet on real Prefect: every site of an inventory migrated, validated ones left alone on a re-run,
a failing site does not stop the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.runs.app import App


@pytest.mark.prefect
@pytest.mark.slow
def test_fleet_migrates_every_site_and_isolates_a_failure(prefect_server, tmp_path):
    from flows.migrate_fleet import migrate_fleet

    folder = tmp_path / "fleet"
    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(folder / "keys" / "signing.key")
    for site_id, office, seed in (("hn-01", "01", 1), ("hp-02", "31", 2)):
        inventory = write_demo_inventory(
            folder,
            site_id=site_id,
            office_code=office,
            seed=seed,
            scale=0.03,
            backup_recipients=[recipient],
            signing_key=Path("keys/signing.key"),
        )
    outcomes = migrate_fleet(inventory=str(inventory), custodian_identity=str(identity))
    assert outcomes == {"hn-01": {"outcome": "validated"}, "hp-02": {"outcome": "validated"}}
    store = App(inventory).control_store
    assert {store.state("hn-01"), store.state("hp-02")} == {SiteState.VALIDATED}

    # Run again: the validated sites are left as they are.
    before = {site_id: len(store.runs(site_id)) for site_id in ("hn-01", "hp-02")}
    assert migrate_fleet(inventory=str(inventory)) == {
        "hn-01": {"outcome": "already validated"},
        "hp-02": {"outcome": "already validated"},
    }
    assert {site_id: len(store.runs(site_id)) for site_id in ("hn-01", "hp-02")} == before

    # Break one site's legacy database: the fleet, asked to redo them, fails naming it; the other still runs.
    sa.create_engine(f"sqlite:///{folder / 'legacy' / 'hp-02.sqlite'}").dispose()
    (folder / "legacy" / "hp-02.sqlite").write_bytes(b"not a database")
    before = len(store.runs("hn-01", "validate"))
    with pytest.raises(VerificationError, match=r"1 of 2 sites failed: hp-02"):
        migrate_fleet(inventory=str(inventory), custodian_identity=str(identity), redo_validated=True)
    assert len(store.runs("hn-01", "validate")) == before + 1
