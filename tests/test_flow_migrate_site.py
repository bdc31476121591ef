"""The migrate-site flow on real Prefect: a demo site goes from NEW to VALIDATED, every step recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.verify import verify_ledger
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.signing import load_public_key
from ts24_migrate.runs.app import App


@pytest.mark.prefect
@pytest.mark.slow
def test_migrate_site_flow_end_to_end_and_rerun_changes_nothing(prefect_server, demo_site):
    from flows.migrate_site import migrate_site

    site = demo_site(scale=0.05, seed=11)
    result = migrate_site(site_id=site.site_id, inventory=str(site.inventory), custodian_identity=str(site.identity))
    app = App(site.inventory)
    store = app.control_store
    assert store.state(site.site_id) is SiteState.VALIDATED
    stages = [r.stage for r in store.runs(site.site_id) if r.outcome == "succeeded"]
    for stage in ("assess", "backup", "verify-backup", "load", "validate"):
        assert stage in stages, stage
    truth = site.truth
    load_runs = store.runs(site.site_id, "load")
    loaded = store.table_figures(load_runs[-1].run_id)
    backup = store.table_figures(store.latest_run(site.site_id, "backup").run_id)
    for table, figures in loaded.items():
        assert figures["source_rows"] == truth["tables"][table]["rows"] == backup[table]["rows"]
        assert figures["source_rows"] == figures["loaded"] + figures["rejected"], table
    assert result["validate"].passed is True, result["validate"].reasons
    assert result["validate"].parity.exact is True
    report = json.loads(open(result["validate"].reports.json_, encoding="utf-8").read())
    assert report["verdict"]["text"] == result["validate"].verdict

    # The ledger holds every stage and verifies offline.
    public_key = load_public_key(app.inventory.signing_key_path.with_suffix(".pub"))
    verification = verify_ledger(app.ledger_path(site.site_id), [public_key])
    assert verification.ok, verification.problems

    # Running the whole flow again resumes/skips every step and changes nothing in the target; the
    # backup is reused (the source is unchanged), and the legacy profile may be a sample.
    backups = sorted(p.name for p in (site.folder / "backups" / site.site_id).iterdir() if p.is_dir())
    rerun = migrate_site(
        site_id=site.site_id, inventory=str(site.inventory), custodian_identity=str(site.identity), legacy_sample_rows=5
    )
    assert rerun["backup"].reused and rerun["backup"].backup_id == backups[-1]
    assert sorted(p.name for p in (site.folder / "backups" / site.site_id).iterdir() if p.is_dir()) == backups
    validation = store.run(rerun["validate"].run_id)
    assert (
        "each table profiled on its first 5 rows (counts are of the sample)"
        in validation.figures["legacy_profile"]["notes"]
    )
    assert rerun["validate"].passed
    again = store.table_figures(store.runs(site.site_id, "load")[-1].run_id)
    assert {t: (f["loaded"], f["rejected"]) for t, f in again.items()} == {
        t: (f["loaded"], f["rejected"]) for t, f in loaded.items()
    }
    assert store.state(site.site_id) is SiteState.VALIDATED


@pytest.mark.prefect
@pytest.mark.slow
def test_failed_verdict_through_the_cli_is_one_clear_error_without_traceback(demo_site):
    import sqlite3
    import subprocess
    import sys

    site = demo_site(scale=0.03, seed=12)
    command = [
        sys.executable,
        "-m",
        "ts24_migrate",
        "-i",
        str(site.inventory),
        "migrate",
        site.site_id,
        "--identity",
        str(site.identity),
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    outcome = first.stdout.strip().splitlines()[-1]
    assert outcome.startswith("outcome: PASSED | site demo: VALIDATED | report: ") and outcome.endswith(
        "reconcile run demo (follow the in-flight dossiers until the site drains; the "
        "reconcile-sites deployment runs it daily)"
    ), outcome
    # A dossier-history row disappears from the new system behind the pipeline's back.
    with sqlite3.connect(site.folder / "new-system" / "target.sqlite") as conn:
        conn.execute(
            "DELETE FROM dossier_history WHERE history_id = "
            "(SELECT MIN(history_id) FROM dossier_history WHERE source = 'ts24')"
        )
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 1
    # The failed migration still ends with its outcome: the report of its validation, the next step.
    outcome = second.stdout.strip().splitlines()[-1]
    assert outcome.startswith("outcome: FAILED | site demo: VALIDATED | report: "), outcome
    report = Path(outcome.split(" | report: ")[1].split(" | ")[0])
    assert report.name == "validation-report.html" and report.is_file()
    assert "PARITY" in report.read_text(encoding="utf-8").upper()
    assert outcome.split(" | next ")[1].startswith("(IT): ts24-migrate -i ") and " validate demo (" in outcome
    assert "reused" in second.stderr  # the backup of the unchanged source was reused, and the log says so
    output = second.stdout + second.stderr
    assert "Traceback" not in output
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: validation of site demo failed: parity"), errors


@pytest.mark.prefect
@pytest.mark.slow
def test_the_demo_command_ends_saying_passed(prefect_server, tmp_path, capsys):
    from ts24_migrate.cli.main import main

    folder = tmp_path / "demo"
    assert main(["demo", "--folder", str(folder), "--scale", "0.03"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == f"demo PASSED: {folder}"
    assert out[-1].startswith("outcome: PASSED | site demo: VALIDATED | report: ")
    assert (folder / "work" / "sites" / "demo" / "latest" / "index.html").is_file()
