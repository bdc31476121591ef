"""`ts24-migrate load SITE`: figures, control store, audit ledger, errors in one line."""

from __future__ import annotations

import json

from test_load_support import demo_inventory

from audit import read_events
from ts24_migrate.cli.main import main
from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import ControlStore, SiteState
from ts24_migrate.core.db import store_engine
from ts24_migrate.runs.app import ledger_path


def _store(inventory) -> ControlStore:
    return ControlStore(store_engine(load_inventory(inventory).control_store_url()))


def test_load_records_the_run_and_its_figures(tmp_path, sqlite_url, capsys):
    inventory, truth = demo_inventory(tmp_path / "site", sqlite_url("target"))

    assert main(["-i", str(inventory), "--json", "load", "demo", "--chunk-rows", "30"]) == 0
    data = json.loads(capsys.readouterr().out)

    assert data["accounting_ok"] and data["chunks_skipped"] == 0
    assert {t: f["source_rows"] for t, f in data["tables"].items()} == {
        t: truth.tables[t]["rows"] for t in data["tables"]
    }
    store = _store(inventory)
    run = store.latest_run("demo", "load")
    assert run.run_id == data["run_id"] and run.outcome == "succeeded"
    assert run.figures["loaded"] == sum(f["loaded"] for f in data["tables"].values())
    assert store.table_figures(run.run_id) == data["tables"]
    assert store.state("demo") == SiteState.LOADED
    events = [event for _, event, _ in read_events(ledger_path(load_inventory(inventory), "demo"))]
    assert [(e.stage, e.event) for e in events if e.stage == "load"] == [("load", "started"), ("load", "succeeded")]

    # Again: nothing to do, the same figures, the state stays.
    assert main(["-i", str(inventory), "--json", "load", "demo"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["chunks_loaded"] == 0 and again["tables"] == data["tables"]


def test_human_output_shows_the_accounting(tmp_path, sqlite_url, capsys):
    inventory, _ = demo_inventory(tmp_path / "site", sqlite_url("target"))
    assert main(["-i", str(inventory), "load", "demo"]) == 0
    out = capsys.readouterr().out
    assert "HO_SO" in out and "CONFLICT_CHANGED_AFTER_CUTOVER" in out
    assert "read = loaded + rejected for every table" in out


def test_errors_are_one_line_with_their_exit_code(tmp_path, sqlite_url, capsys):
    inventory, _ = demo_inventory(tmp_path / "site", sqlite_url("target"))
    assert main(["-i", str(inventory), "load", "nowhere"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {inventory.resolve()}: no site 'nowhere' in the inventory (known: demo)"
    ]

    assert main(["-i", str(inventory), "load", "demo", "--chunk-rows", "0"]) == 2
    assert "--chunk-rows" in capsys.readouterr().err

    # The target is unreachable: exit 3, and the password never shows.
    secret = tmp_path / "site" / "secrets" / "target.url"
    secret.write_text("postgresql+psycopg://migrator:s3cret-pw@127.0.0.1:1/nowhere", encoding="utf-8")
    assert main(["-i", str(inventory), "load", "demo"]) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "target database unreachable" in err
    assert "s3cret-pw" not in err


def test_help_has_an_example(capsys):
    assert main(["load", "--help"]) == 0
    assert "Example:" in capsys.readouterr().out
