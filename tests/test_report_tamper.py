"""A target changed behind the pipeline's back fails validation, naming exactly the changed keys.

After the load, one history row is deleted, one unit changed and one dossier
added in the target. Validation must fail (exit code 1), parity must name
exactly those three keys, every other check must still hold, and the report
(JSON and HTML, as Chromium renders it) must say so. On SQLite through the
command line, and on PostgreSQL (`target: env:VAR` in the inventory) through
`validate_step`, first clean, then tampered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_report_support import SITE, TARGET_ENV, Tampered, chromium_dom, migrated_site, parse_page, tamper_target

from audit import read_events
from ts24_migrate.cli.main import main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.runs.validate import ValidationFailed, validate_step

pytestmark = pytest.mark.slow


def _named_keys(report: dict) -> set[tuple]:
    return {
        (table, kind, entry["target_key"], entry["legacy_key"])
        for table, parity in report["parity"]["tables"].items()
        for kind in ("missing", "extra", "changed")
        for entry in parity[kind]
    }


def _expected(tampered: Tampered) -> set[tuple]:
    return {
        (*tampered.deleted[:1], "missing", *tampered.deleted[1:]),
        (*tampered.changed[:1], "changed", *tampered.changed[1:]),
        (*tampered.added[:1], "extra", *tampered.added[1:]),
    }


def _assert_fails_on_parity_alone(report: dict, tampered: Tampered) -> None:
    assert report["verdict"]["passed"] is False
    assert _named_keys(report) == _expected(tampered)
    assert (
        report["parity"]["differences"],
        report["parity"]["missing"],
        report["parity"]["extra"],
        report["parity"]["changed"],
    ) == (3, 1, 1, 1)
    (reason,) = report["verdict"]["reasons"]  # everything else still holds
    assert reason.startswith("parity: 3 difference(s)")
    assert report["accounting"]["totals"]["ok"] and report["backup"]["verified"]
    assert report["expectations"]["target"]["success"]


def test_tampered_sqlite_target_fails_validation_naming_exactly_the_keys(tmp_path, capsys):
    site = migrated_site(tmp_path)
    tampered = tamper_target(site.app.target_engine())

    assert main(["-i", str(site.inventory), "validate", SITE]) == 1
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [err.strip()]  # one line
    assert err.startswith(f"error: validation of site {SITE} failed: parity: 3 difference(s)")
    assert "validation FAILED" in out and "report: " in out
    html_path = Path(next(line for line in out.splitlines() if line.startswith("report: ")).removeprefix("report: "))
    assert out.strip().splitlines()[-1].startswith(f"outcome: FAILED | site {SITE}: LOADED | report: {html_path} | ")
    report = json.loads(html_path.with_suffix(".json").read_text(encoding="utf-8"))
    _assert_fails_on_parity_alone(report, tampered)

    # Recorded before failing: the run, its figures, a ledger event; the state did not advance.
    store = site.app.control_store
    run = store.run(report["validation"]["run_id"])
    assert run.outcome == "failed" and run.figures["passed"] is False and run.error.startswith("VerificationError")
    assert store.state(SITE) == SiteState.LOADED
    events = [(e.event, e.data) for _, e, _ in read_events(site.app.ledger_path(SITE)) if e.run_id == run.run_id]
    assert [event for event, _ in events] == ["started", "failed"]

    # The page says so, and lists the keys.
    page = parse_page(chromium_dom(html_path, tmp_path / "chromium"))
    assert page.texts["verdict"].startswith("FAILED")
    parity_rows = {cells[0]: cells for cells in page.tables["parity-table"][1:]}
    assert parity_rows["dossier_history"][3:7] == ["1", "0", "0", "NO"]
    assert parity_rows["units"][3:7] == ["0", "0", "1", "NO"]
    assert parity_rows["dossiers"][3:7] == ["0", "1", "0", "NO"]
    keys_text = page.texts["parity-keys"]
    assert f"{tampered.deleted[1]} (legacy {tampered.deleted[2]})" in keys_text
    assert f"{tampered.changed[1]} (legacy {tampered.changed[2]})" in keys_text
    assert str(tampered.added[1]) in keys_text
    site.app.close()


@pytest.mark.postgres
def test_postgresql_target_validates_clean_then_names_the_tampered_keys(tmp_path, pg_url, monkeypatch):
    monkeypatch.setenv(TARGET_ENV, pg_url)
    site = migrated_site(tmp_path, target_url=pg_url)
    assert site.app.target_engine().dialect.name == "postgresql"

    clean = validate_step(site.app, SITE)
    assert clean.passed and clean.parity.exact and clean.target_expectations.failed == 0
    assert site.app.control_store.state(SITE) == SiteState.VALIDATED

    tampered = tamper_target(site.app.target_engine())
    with pytest.raises(ValidationFailed, match="parity: 3 difference") as failure:
        validate_step(site.app, SITE)
    result = failure.value.result
    report = json.loads(Path(result.reports.json_).read_text(encoding="utf-8"))
    _assert_fails_on_parity_alone(report, tampered)
    assert report["validation"]["run_id"] == result.run_id != clean.run_id
    # The state stays VALIDATED from the clean run: a state never moves back (see the report).
    assert site.app.control_store.state(SITE) == SiteState.VALIDATED
    site.app.close()
