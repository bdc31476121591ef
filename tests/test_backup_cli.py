"""`ts24-migrate backup ...` on a demo inventory: create, list, verify, restore, with the control
store, the audit ledger and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml

from audit import read_events, verify_ledger
from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.main import cli, main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.labels import finding_line
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.runs.app import App


@pytest.fixture
def demo(tmp_path: Path):
    identity = tmp_path / "keys" / "alice.age-identity"
    recipient = generate_custodian_identity(identity)
    public_key = generate_signing_key(tmp_path / "keys" / "signing.key")
    inventory = write_demo_inventory(
        tmp_path / "site", scale=0.05, backup_recipients=[recipient], signing_key=tmp_path / "keys" / "signing.key"
    )
    return inventory, identity, public_key


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_backup_verify_restore_from_the_command_line(demo, capsys, tmp_path: Path) -> None:
    inventory, identity, public_key = demo
    inv = str(inventory)

    assert _run(capsys, "-i", inv, "assess", "demo")[0] == 0
    code, out, err = _run(capsys, "-i", inv, "backup", "demo")
    assert code == 0, err
    assert "manifest fingerprint:" in out and finding_line("missing", 1) in out

    code, out, _ = _run(capsys, "-i", inv, "--json", "backup", "list", "demo")
    [listed] = json.loads(out)["backups"]
    assert code == 0 and listed["status"] == "complete"
    app = App(inventory)
    store = app.control_store
    assert store.state("demo") == SiteState.BACKED_UP
    run = store.latest_run("demo", "backup")
    assert run.figures["manifest_fingerprint"] == listed["manifest_fingerprint"]
    figures = store.table_figures(run.run_id)
    assert figures["IMPORT_TAM"]["role"] == "unmapped" and figures["HO_SO"]["rows"] == 100

    code, out, _ = _run(capsys, "-i", inv, "backup", "verify", "demo")
    assert code == 0 and "OK (signature+ciphertext)" in out
    assert store.state("demo") == SiteState.BACKED_UP  # a check without decryption proves less
    code, out, _ = _run(capsys, "-i", inv, "--json", "backup", "verify", "demo", "--identity", str(identity))
    assert code == 0 and json.loads(out)["rows_checked"] == listed["rows"]
    assert store.state("demo") == SiteState.BACKUP_VERIFIED
    assert [t[1] for t in store.transitions("demo")][-3:] == ["EXTRACTED", "BACKED_UP", "BACKUP_VERIFIED"]

    scratch = tmp_path / "scratch.sqlite"
    code, out, err = _run(
        capsys,
        "-i",
        inv,
        "--json",
        "backup",
        "restore",
        "demo",
        "--identity",
        str(identity),
        "--into-sqlite",
        str(scratch),
        "--files",
        str(tmp_path / "restored"),
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and all(t["matches_live"] for t in result["tables"].values())
    assert result["files"]["matches_live"] is True

    ledger = app.ledger_path("demo")
    assert verify_ledger(ledger, [public_key]).ok
    events = [event.event for _, event, _ in read_events(ledger) if event is not None]
    assert {"backup.created", "backup.verified", "backup.restored"} <= set(events)
    app.close()


def test_verify_exits_1_naming_the_damaged_part(demo, capsys) -> None:
    inventory, identity, _ = demo
    assert _run(capsys, "-i", str(inventory), "assess", "demo")[0] == 0
    assert _run(capsys, "-i", str(inventory), "backup", "demo")[0] == 0
    part = next((inventory.parent / "backups" / "demo").rglob("part-000001.parquet.age"))
    data = bytearray(part.read_bytes())
    data[-1] ^= 0xFF
    part.write_bytes(bytes(data))
    code, _, err = _run(capsys, "-i", str(inventory), "backup", "verify", "demo", "--identity", str(identity))
    assert code == 1
    assert err.startswith("error: backup ") and "ciphertext SHA-256 or size does not match" in err
    assert "Traceback" not in err
    store = App(inventory).control_store
    assert store.state("demo") == SiteState.BACKED_UP
    assert store.latest_run("demo", "verify-backup", outcome="failed") is not None


def test_clear_errors_for_bad_input(demo, capsys, tmp_path: Path) -> None:
    inventory, identity, _ = demo
    inv = str(inventory)
    code, _, err = _run(capsys, "-i", inv, "backup", "verify", "demo")
    assert code == 4 and "has no complete backup" in err
    code, _, err = _run(capsys, "-i", inv, "backup", "restore", "demo", "--identity", str(identity))
    assert code == 2 and "exactly one of --into-sqlite" in err
    code, _, err = _run(
        capsys,
        "-i",
        inv,
        "backup",
        "restore",
        "demo",
        "--identity",
        str(identity),
        "--into-url-env",
        "TS24_NOT_SET_ANYWHERE",
    )
    assert code == 2 and "TS24_NOT_SET_ANYWHERE is not set" in err
    data = yaml.safe_load(inventory.read_text())
    data["sites"][0]["backup_recipients"] = []
    no_recipients = inventory.parent / "no-recipients.yaml"
    no_recipients.write_text(yaml.safe_dump(data))
    code, _, err = _run(capsys, "-i", str(no_recipients), "backup", "create", "demo")
    assert code == 2 and "backup_recipients" in err, err


def test_every_backup_command_has_an_example() -> None:
    group = cli.commands["backup"]
    assert "Example:" in (group.help or "")
    for name, command in group.commands.items():
        assert isinstance(command, click.Command)
        assert "Example:" in (command.help or ""), name
