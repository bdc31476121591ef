"""A MariaDB legacy site (over ODBC) purged end to end: writes stopped by revoking the application
account's grants on the site's database only, DROP DATABASE of that database only (a second database on
the same server untouched), the chain still restoring the pre-purge fingerprints, the certificate verifying."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from conftest import MARIADB_DRIVER, MARIADB_HOST, MARIADB_PORT
from test_purge_support import SITE, PurgeSite, run_cli

from backups.chain import load_chain, restore_chain
from extract.extraction import live_fingerprints
from reconcile.state import ReconcileState
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.db import legacy_engine, store_engine
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import generate_signing_key, load_public_key
from ts24_migrate.demo import generate_site

CUTOVER = dt.date(2025, 7, 1)


def _secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


def _site(folder: Path, legacy_url: str, account: str) -> PurgeSite:
    recipient = generate_custodian_identity(folder / "keys" / "custodian.age-identity")
    generate_signing_key(folder / "keys" / "signing.key")
    for who in ("operator", "approver-b"):
        generate_signing_key(folder / "keys" / who / "signing.key")
    _secret(folder / "secrets" / "legacy.url", legacy_url)
    _secret(folder / "secrets" / "target.url", f"sqlite:///{folder / 'new-system' / 'target.sqlite'}")
    (folder / "new-system").mkdir()
    inventory = folder / "sites.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "work_dir": "work",
                "backup_dir": "backups",
                "signing_key": "keys/signing.key",
                "target": "file:secrets/target.url",
                "approvers": [{"name": "Tran Thi B", "public_key": "keys/approver-b/signing.pub"}],
                "purge": {"operator": {"name": "Nguyen Van A", "role": "Operator", "organisation": "BHXH demo"}},
                "sites": [
                    {
                        "id": SITE,
                        "office": "01",
                        "legacy": "file:secrets/legacy.url",
                        "attachments": "files",
                        "cutover": CUTOVER.isoformat(),
                        "backup_recipients": [recipient],
                        "purge": {"application_accounts": [account]},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return PurgeSite(folder, inventory)


def _odbc_url(user: str, password: str, database: str) -> str:
    return (
        f"mysql+pyodbc://{user}:{password}@{MARIADB_HOST}:{MARIADB_PORT}/{database}"
        f"?driver={MARIADB_DRIVER.replace(' ', '+')}&charset=utf8mb4"
    )


@pytest.mark.mariadb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_mariadb_site_is_purged_and_nothing_else_on_its_server(tmp_path, mariadb_database, _mariadb_admin, capsys):
    legacy_url, other_url = mariadb_database(), mariadb_database()
    database = sa.engine.make_url(legacy_url).database
    user, password = f"ts24app_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    account = f"{user}@%"
    with _mariadb_admin.connect() as conn:
        conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        conn.execute(sa.text(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'"))
    site = _site(tmp_path / "site", legacy_url, account)
    other = legacy_engine(Secret(other_url), read_only=False)
    application = None
    try:
        # The legacy site, and another database on the same server that is not the site's.
        writer = legacy_engine(Secret(legacy_url), read_only=False)
        target = store_engine(Secret(f"sqlite:///{site.folder / 'new-system' / 'target.sqlite'}"))
        generate_site(writer, site.folder / "files", target=target, seed=7, scale=0.05, cutover=CUTOVER)
        writer.dispose()
        target.dispose()
        with other.begin() as conn:
            conn.execute(sa.text("CREATE TABLE KHAC (ID INT PRIMARY KEY, TEN VARCHAR(50))"))
            conn.execute(sa.text("INSERT INTO KHAC VALUES (1, 'another application'), (2, 'its data')"))
        other_before = live_fingerprints(other)

        identity = site.identity
        for step in (
            ["assess", SITE],
            ["backup", SITE],
            ["backup", "verify", SITE, "--identity", str(identity)],
            ["load", SITE],
            ["validate", SITE],
            ["reconcile", "run", SITE],
            ["demo-advance", SITE, "--days", "4", "--drain"],
            ["reconcile", "run", SITE],
        ):
            code, _out, err = run_cli(site.inventory, *step, capsys=capsys)
            assert code in (ExitCode.OK,), (step, err)

        # TS24 is connected while the purge is prepared: its grants go, its session is ended.
        application = legacy_engine(Secret(_odbc_url(user, password, database)), read_only=False)
        session = application.connect()
        session.execute(sa.text("SELECT COUNT(*) FROM HO_SO")).scalar()
        code, prepared, err = run_cli(
            site.inventory, "purge", "prepare", SITE, "--identity", str(identity), capsys=capsys
        )
        assert code == ExitCode.OK, err
        assert {r["account"] for r in prepared["write_stop"]["revoked"]} == {account}
        with pytest.raises(sa.exc.DBAPIError):
            session.execute(sa.text("SELECT 1")).scalar()  # its connection was ended
        session.invalidate()
        with pytest.raises(sa.exc.DBAPIError):
            with application.begin() as conn:  # and it can no longer write
                conn.execute(sa.text("UPDATE HO_SO SET GHI_CHU = 'after the final backup' WHERE ID_HO_SO > 0"))
        assert live_fingerprints(other) == other_before

        plan = site.plan(capsys)
        body = json.loads(Path(plan["plan"]).read_text(encoding="utf-8"))["body"]
        assert body["database"] == {
            "engine": "mariadb",
            "name": database,
            "method": "DROP DATABASE of the site's database only",
        }
        assert any("binary logs" in r for r in body["residue"]["outside_reach"])
        # The demo's view, trigger, procedure and sequence are dropped with the database, each listed.
        assert {o["kind"] for o in body["objects"]} == {"view", "trigger", "procedure", "sequence"}
        assert body["backup_chain"]["objects_compared_with"] == "the backup chain's record of object definitions"
        approval = site.approve(plan["plan"], capsys=capsys)
        target_before = (site.folder / "new-system" / "target.sqlite").read_bytes()
        code, result, err = run_cli(
            site.inventory, "purge", "execute", SITE, "--plan", plan["plan"], "--approval", approval, capsys=capsys
        )
        assert code == ExitCode.OK, err

        with _mariadb_admin.connect() as conn:
            schemas = set(conn.execute(sa.text("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")).scalars())
        assert database not in schemas and sa.engine.make_url(other_url).database in schemas
        assert live_fingerprints(other) == other_before  # the other database on the server: untouched
        assert (site.folder / "new-system" / "target.sqlite").read_bytes() == target_before
        assert list((site.folder / "files").iterdir()) == []
        assert site.store().state(SITE) == SiteState.CERTIFIED
        certificate = json.loads(Path(result["certificate"]).read_text(encoding="utf-8"))["body"]
        scan = certificate["verification"]["residue_scan"]
        where = {location["what"]: location for location in scan["locations"]}
        assert "MariaDB data directory (shared files)" in where  # this host can read the server's files
        assert where["MariaDB data directory (shared files)"]["files"] > 0
        assert all(hit["location"] != "former attachment folder" for hit in scan["hits"])

        code, check, err = run_cli(
            site.inventory,
            "certificate",
            "verify",
            result["certificate"],
            "--public-key",
            str(site.public_key),
            "--backups",
            str(site.folder / "backups"),
            "--ledger",
            str(site.ledger),
            capsys=capsys,
        )
        assert code == ExitCode.OK and check["ok"], err

        # The chain restores what was dropped: the pre-purge fingerprints of the certificate.
        store = site.store()
        manifests = load_chain(site.folder / "backups", SITE, ReconcileState(store.engine).chain(SITE))
        scratch = store_engine(Secret(f"sqlite:///{tmp_path / 'restored.sqlite'}"))
        try:
            report = restore_chain(
                manifests,
                identity,
                scratch,
                tmp_path / "restored-files",
                public_key_b64=load_public_key(site.public_key),
            )
        finally:
            scratch.dispose()
        assert report.ok, report.problems
        assert {n: t["fingerprint"] for n, t in report.tables.items()} == certificate["pre_purge_fingerprints"][
            "tables"
        ]
        assert report.files["fingerprint"] == certificate["pre_purge_fingerprints"]["attachments"]
    finally:
        if application is not None:
            application.dispose()
        other.dispose()
        with _mariadb_admin.connect() as conn:
            conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
