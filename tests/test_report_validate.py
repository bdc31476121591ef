"""`validate SITE` and `report SITE` on a migrated demo site (SQLite target).

One site is backed up, verified with the custodian's identity, loaded and
validated through the command line once for the module; the tests read what
that run recorded and wrote. The tampered site has its own test
(test_report_tamper.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_report_support import SITE, chromium_dom, migrated_site, parse_page

from audit import read_events
from flows.artifacts import publish_report_artifacts
from load.bookkeeping import crosswalk, rejects
from ts24_migrate.cli.main import main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.personal_data import mask_legacy_key
from ts24_migrate.runs.app import App
from validation.report import SiteReport, build_site_report
from validation.report_artifacts import accounting_rows, report_artifacts, report_markdown
from validation.report_html import render_html

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    site = migrated_site(tmp_path_factory.mktemp("report"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-i", str(site.inventory), "--json", "validate", SITE])
    assert code == 0, err.getvalue()
    result = json.loads(out.getvalue())
    yield site, result
    site.app.close()


def _runs(store):
    return {stage: store.latest_run(SITE, stage) for stage in ("backup", "verify-backup", "load")}


def test_a_clean_demo_run_passes_with_exact_parity(validated):
    site, result = validated
    store = site.app.control_store
    assert result["passed"] and result["verdict"] == "passed" and result["reasons"] == []
    assert result["parity"]["exact"] and result["parity"]["differences"] == 0
    assert result["target_expectations"]["success"] and result["target_expectations"]["failed"] == 0
    assert result["target_expectations"]["evaluated"] > 50
    assert result["accounting"]["ok"] and result["accounting"]["rejected"] > 0  # the demo's dirt, accounted
    assert result["backup"]["verified"]
    run = store.run(result["run_id"])
    assert run.stage == "validate" and run.outcome == "succeeded" and run.figures["passed"] is True
    assert store.state(SITE) == SiteState.VALIDATED
    events = [e for _, e, _ in read_events(site.app.ledger_path(SITE)) if e.run_id == result["run_id"]]
    assert [(e.stage, e.event) for e in events] == [("validate", "started"), ("validate", "succeeded")]
    # The report, its JSON and the Data Docs are where the run says.
    for path in (result["reports"]["html"], result["reports"]["json"], *result["data_docs"].values()):
        assert Path(path).is_file(), path
    assert Path(result["reports"]["html"]).parent == site.app.reports_dir(SITE) / result["run_id"]
    # No connection detail reaches the report.
    written = Path(result["reports"]["html"]).read_text() + Path(result["reports"]["json"]).read_text()
    inventory = site.app.inventory
    for secret in (inventory.legacy_url(inventory.site(SITE)), inventory.target_url()):
        assert secret.reveal() not in written


def test_every_figure_in_the_report_is_the_control_store_figure(validated):
    site, result = validated
    store = site.app.control_store
    report = json.loads(Path(result["reports"]["json"]).read_text(encoding="utf-8"))
    runs = _runs(store)
    backup_tables = store.table_figures(runs["backup"].run_id)
    load_tables = store.table_figures(runs["load"].run_id)
    run = store.run(result["run_id"])
    recorded = store.table_figures(run.run_id)
    assert {stage: (r or {}).get("run_id") for stage, r in report["runs"].items() if stage != "assess"} == {
        stage: r.run_id for stage, r in runs.items()
    }

    # Accounting: per table, the backup's and the load's own figures; totals those of their runs.
    rows = {row["table"]: row for row in report["accounting"]["tables"]}
    assert set(rows) == set(backup_tables)
    for table, row in rows.items():
        assert row["backed_up"] == backup_tables[table]["rows"] and row["role"] == backup_tables[table]["role"]
        if table in load_tables:
            assert (row["source"], row["loaded"], row["rejected"], row["conflicts"]) == tuple(
                load_tables[table][k] for k in ("source_rows", "loaded", "rejected", "conflicts")
            )
        else:
            assert row["source"] == backup_tables[table]["count_at_start"] and row["loaded"] is None
        assert {k: v for k, v in row.items() if k != "role"} == recorded[table]["accounting"]
    totals = report["accounting"]["totals"]
    assert totals == run.figures["accounting"]
    assert totals["backed_up"] == runs["backup"].figures["rows"]
    assert (totals["loaded"], totals["rejected"], totals["conflicts"]) == tuple(
        runs["load"].figures[k] for k in ("loaded", "rejected", "conflicts")
    )

    # Rejects: the load's counts by reason, and examples that are real rejects of that reason.
    assert {t: e["by_reason"] for t, e in report["rejects"]["tables"].items()} == {
        t: f["rejects_by_reason"] for t, f in load_tables.items()
    }
    assert report["rejects"]["total"] == runs["load"].figures["rejected"]
    target = site.app.target_engine()
    with target.connect() as conn:
        for table, entry in report["rejects"]["tables"].items():
            assert set(entry["examples"]) == set(entry["by_reason"])
            for reason, examples in entry["examples"].items():
                assert 1 <= len(examples) <= min(3, entry["by_reason"][reason])
                # An insured person's key is masked in the report: found among the rejects of that reason
                # whose key masks the same (as a custodian finds it in the backup).
                of_reason = {
                    (mask_legacy_key(table, key), field)
                    for key, field in conn.execute(
                        sa.select(rejects.c.legacy_key, rejects.c.field).where(
                            rejects.c.site_id == SITE, rejects.c.legacy_table == table, rejects.c.reason_code == reason
                        )
                    )
                }
                for example in examples:
                    assert (example["legacy_key"], example["field"]) in of_reason

    # Flags: the rows loaded with each flag, as the load counted them (nothing was carried over since).
    assert {t: e["rows_flagged"] for t, e in report["flags"]["tables"].items()} == {
        t: f["flags_by_code"] for t, f in load_tables.items() if f["flags_by_code"]
    }
    assert report["flags"]["tables"]["DM_DONVI"]["rows_flagged"]["TEXT_REPAIRED_TCVN3"] > 0  # the demo's dirt

    # Backup: the backup run's figures, the verification run's, and the signature file on disk.
    backup = report["backup"]
    for key in ("backup_id", "manifest_fingerprint", "rows", "tables", "parts", "ciphertext_bytes"):
        assert backup[key] == runs["backup"].figures[key], key
    verification = backup["verification"]
    assert verification["run_id"] == runs["verify-backup"].run_id and verification["state"] == "verified"
    for key in ("rows_checked", "parts_checked", "files_checked", "mode"):
        assert verification[key] == runs["verify-backup"].figures[key], key
    # Files are named from the inventory's folder (a report travels; host paths do not).
    signature_file = json.loads((site.inventory.parent / backup["signature"]["file"]).read_text())
    assert backup["signature"]["signature"] == signature_file["signature"] and backup["signature"]["valid"]
    assert signature_file["manifest_sha256"] == backup["manifest_fingerprint"]

    # Expectations and parity: the validate run's per-table figures, and its totals.
    target_suites = report["expectations"]["target"]
    assert target_suites["tables"] == {
        t[len("target:") :]: f["expectations"] for t, f in recorded.items() if t.startswith("target:")
    }
    assert target_suites["evaluated"] == sum(s["evaluated"] for s in target_suites["tables"].values())
    assert report["parity"]["tables"] == {
        t[len("target:") :]: f["parity"] for t, f in recorded.items() if t.startswith("target:")
    }
    with target.connect() as conn:
        written = dict(
            conn.execute(
                sa.select(crosswalk.c.target_table, sa.func.count())
                .where(crosswalk.c.site_id == SITE)
                .group_by(crosswalk.c.target_table)
            ).all()
        )
    assert {t: p["lineage_rows"] for t, p in report["parity"]["tables"].items()} == written
    # Dossiers by status: the dossiers the load wrote.
    assert report["dossiers_by_status"] == run.figures["dossiers_by_status"]
    assert sum(report["dossiers_by_status"].values()) == load_tables["HO_SO"]["loaded"] == written["dossiers"]

    # The ledger head: an event of the ledger, the last one before the run's own outcome.
    events = [e for _, e, _ in read_events(site.app.ledger_path(SITE))]
    (head,) = [e for e in events if e.seq == report["ledger"]["seq"]]
    assert head.hash == report["ledger"]["hash"]
    assert (head.run_id, head.event) == (run.run_id, "started")


def test_the_report_renders_in_headless_chromium(validated, tmp_path):
    site, result = validated
    report = json.loads(Path(result["reports"]["json"]).read_text(encoding="utf-8"))
    html = Path(result["reports"]["html"]).read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    page = parse_page(chromium_dom(Path(result["reports"]["html"]), tmp_path / "chromium"))

    assert page.texts["verdict"].startswith("PASSED")
    header, *body, total = page.tables["accounting"]
    assert header[:6] == ["legacy table", "role", "source rows", "backed up", "loaded", "rejected"]
    shown = {cells[0]: cells for cells in body}
    for row in report["accounting"]["tables"]:
        cells = shown[row["table"]]
        assert cells[2:7] == [
            "—" if row[k] is None else str(row[k]) for k in ("source", "backed_up", "loaded", "rejected", "conflicts")
        ]
        assert cells[7] == "yes"
    assert len(body) == len(report["accounting"]["tables"])
    assert total[2] == str(report["accounting"]["totals"]["source"])
    assert page.svgs == 3  # rows per table, rejects by reason, dossiers by status
    assert page.texts["ledger-head"] == report["ledger"]["hash"]
    for reason in report["rejects"]["by_reason"]:
        assert reason in page.texts["rejects"]
    header, *flagged = page.tables["flags-table"]
    assert header[:4] == ["legacy table", "flag", "what it means", "rows"]
    assert {(c[0], c[1]): c[3] for c in flagged} == {
        (t, code): str(n) for t, e in report["flags"]["tables"].items() for code, n in e["rows_flagged"].items()
    }
    # The Data Docs links are relative and lead to the Data Docs.
    assert 'href="data-docs/target/index.html"' in html and 'href="data-docs/legacy/index.html"' in html


def test_report_rebuilds_from_a_copy_of_the_control_store_alone(validated, tmp_path, capsys):
    site, result = validated
    # An auditor's machine: the inventory and the control store, nothing else.
    auditor = tmp_path / "auditor"
    (auditor / "work").mkdir(parents=True)
    shutil.copy(site.inventory, auditor / "sites.yaml")
    with (
        contextlib.closing(sqlite3.connect(site.app.inventory.work_path / "control.sqlite")) as source,
        contextlib.closing(sqlite3.connect(auditor / "work" / "control.sqlite")) as copy,
    ):
        source.backup(copy)  # the store runs in WAL mode: a file copy could miss recent pages
    out = tmp_path / "rebuilt"

    assert main(["-i", str(auditor / "sites.yaml"), "--json", "report", SITE, "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["run_id"] == result["run_id"] and printed["passed"] is True
    rebuilt = json.loads((out / "validation-report.json").read_text(encoding="utf-8"))
    original = json.loads(Path(result["reports"]["json"]).read_text(encoding="utf-8"))
    assert {k: v for k, v in rebuilt.items() if k != "rebuilt_at"} == {
        k: v for k, v in original.items() if k != "rebuilt_at"
    }
    html = (out / "validation-report.html").read_text(encoding="utf-8")
    assert 'id="verdict"' in html and "PASSED" in html
    # The Data Docs sit beside the report; this machine has none to copy along, and the page says so.
    assert (
        _href(html, "target Data Docs")
        == original["expectations"]["target"]["data_docs"]
        == "data-docs/target/index.html"
    )
    assert "not included in this folder" in html and not (out / "data-docs").exists()

    # Human output, --run and errors.
    assert main(["-i", str(site.inventory), "report", SITE, "--run", result["run_id"]]) == 0
    assert f"report: {result['reports']['html']}" in capsys.readouterr().out
    assert main(["-i", str(site.inventory), "report", SITE, "--run", "no-such-run"]) == 2
    assert capsys.readouterr().err.strip() == "error: the control store has no run 'no-such-run'"
    backup_run = site.app.control_store.latest_run(SITE, "backup").run_id
    assert main(["-i", str(site.inventory), "report", SITE, "--run", backup_run]) == 2
    assert "is a backup run" in capsys.readouterr().err


def test_legacy_values_holding_markup_are_shown_as_text(validated, tmp_path):
    """The page escapes what the legacy data brings: a table name, reject and flag examples, a warning."""
    site, result = validated
    data = json.loads(Path(result["reports"]["json"]).read_text(encoding="utf-8"))
    hostile, escaped = "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"
    data["accounting"]["tables"][0]["table"] = hostile
    example = {"legacy_key": hostile, "field": hostile, "value": hostile, "message": hostile}
    data["rejects"]["tables"] = {hostile: {"by_reason": {"DATE_INVALID": 1}, "examples": {"DATE_INVALID": [example]}}}
    flagged = {"legacy_key": "7", "field": "TEN", "original_value": hostile, "loaded_value": ""}
    data["flags"]["tables"] = {"DM_DONVI": {"rows_flagged": {"TEXT_TCVN3": 1}, "examples": {"TEXT_TCVN3": [flagged]}}}
    data["backup"]["warning_messages"] = [hostile]
    html = render_html(SiteReport(SITE, result["run_id"], data), folder=tmp_path)
    assert "<script" not in html
    page = parse_page(html)
    assert page.tables["accounting"][1][0] == page.tables["rejects-table"][1][0] == hostile
    assert page.tables["rejects-table"][1][4] == f"{hostile} {hostile} = {hostile} {hostile}"
    assert page.tables["flags-table"][1][4] == f"7 TEN: {hostile} → ''"
    assert page.texts["backup-warnings"] == hostile
    assert html.count(escaped) >= 8


def _href(html: str, text: str) -> str:
    end = html.index(f">{text}</a>")
    start = html.rindex('href="', 0, end) + len('href="')
    return html[start : html.index('"', start)]


@pytest.mark.prefect
def test_prefect_artifacts_carry_the_verdict_and_the_accounting(validated, prefect_server):
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    site, result = validated
    report = build_site_report(site.app.control_store, SITE, run_id=result["run_id"])

    @flow(name="report-artifacts-test")
    def publish() -> None:
        publish_report_artifacts(SITE, report_artifacts(SITE, report))

    publish()

    async def read(key: str):
        async with get_client() as client:
            return await client.read_latest_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    (markdown,) = asyncio.run(read("demo-validation"))
    (table,) = asyncio.run(read("demo-validation-table"))
    assert markdown.data == report_markdown(report)
    assert "PASSED" in markdown.data and result["run_id"] in markdown.data
    rows = table.data if isinstance(table.data, list) else json.loads(table.data)
    assert rows == json.loads(json.dumps(accounting_rows(report)))
    assert {r["table"]: r["source"] for r in rows} == {
        r["table"]: r["source"] for r in report.to_dict()["accounting"]["tables"]
    }


def test_validate_needs_a_backup_and_a_load(tmp_path, capsys):
    from ts24_migrate.cli.commands.demo_data import write_demo_inventory
    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key

    recipient = generate_custodian_identity(tmp_path / "keys" / "custodian.age-identity")
    generate_signing_key(tmp_path / "keys" / "signing.key")
    inventory = write_demo_inventory(
        tmp_path / "site", scale=0.05, backup_recipients=[recipient], signing_key=tmp_path / "keys" / "signing.key"
    )
    assert main(["-i", str(inventory), "validate", SITE]) == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "error: validate of site demo refused: the site has no complete backup; first, IT runs `ts24-migrate -i "
    ) and err.endswith(" assess demo` (the site has not been assessed)")
    assert main(["-i", str(inventory), "report", SITE]) == 4
    assert "has no validation with a verdict yet" in capsys.readouterr().err
    assert App(inventory).control_store.runs(SITE, "validate") == []


def test_help_texts_have_examples(capsys):
    for command in ("validate", "report"):
        assert main([command, "--help"]) == 0
        assert "Example:" in capsys.readouterr().out
