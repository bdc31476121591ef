"""No copy left behind unnamed: a migrated and reconciled demo site leaks no person's data.

The module migrates a demo site once (assess, backup, custodian verification,
load, validate), reconciles it, restores its backup chain into a scratch
database and folder, and hands a report copy over (`report --out`), all under
the common umask 022. Then:

- no social insurance number, citizen ID, name, birth date, phone, e-mail or
  address of the legacy demo database appears in any report (HTML, JSON, MD),
  Data Docs page, ledger line, Prefect artifact text or control-store figure,
  while the masked examples are there (the reports still show what is wrong);
- every file under the work folder, the backup folder, the report copy and the
  scratch restore is 0600, every folder 0700, and so is the SQLite target;
- the register of copies names every place legacy data remains, each existing
  entry's path exists, and destroying the scratch copies (and a staging table
  left in the target) leaves them gone and recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import sqlite3
import stat
import unicodedata
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_report_support import SITE, migrated_site

from purge.remaining_copies import (
    CopyKind,
    Disposition,
    destroy_scratch_copies,
    leftover_staging_tables,
    remaining_copies,
    scratch_record,
)
from ts24_migrate.cli.main import main
from ts24_migrate.core.personal_data import MASKED_NOTICE
from ts24_migrate.core.private_files import loose_modes
from ts24_migrate.runs.assess import assess_step
from ts24_migrate.runs.reconcile import reconcile_step
from ts24_migrate.runs.validate import ValidationFailed, validate_step

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    previous = os.umask(0o022)  # what most hosts run with: the modes must not depend on it
    try:
        migrated = migrated_site(tmp_path_factory.mktemp("privacy"))
        app = migrated.app
        assess_step(app, SITE)
        try:
            validation = validate_step(app, SITE)
        except ValidationFailed as exc:  # the demo is dirty on purpose; the report is written either way
            validation = exc.result
        reconciliation = reconcile_step(app, SITE)
        base = migrated.inventory.parent
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert (
                main(
                    [
                        "-i",
                        str(migrated.inventory),
                        "--json",
                        "reconcile",
                        "restore-chain",
                        SITE,
                        "--identity",
                        str(migrated.identity),
                        "--into-sqlite",
                        str(base / "scratch" / "chain.sqlite"),
                        "--files",
                        str(base / "scratch" / "chain-files"),
                    ]
                )
                == 0
            ), err.getvalue()
            assert (
                main(["-i", str(migrated.inventory), "--json", "report", SITE, "--out", str(base / "for-the-auditor")])
                == 0
            ), err.getvalue()
    finally:
        os.umask(previous)
    yield migrated, validation, reconciliation
    app.close()


def _personal_values(legacy: Path) -> dict[str, str]:
    """value -> kind, for every person and contact of the legacy demo database (as stored, repaired to NFC,
    and as the new system stores birth dates)."""
    values: dict[str, str] = {}

    def add(kind: str, value) -> None:
        if isinstance(value, str) and len(value.strip()) >= 6:
            for form in {value.strip(), unicodedata.normalize("NFC", value.strip())}:
                values[form] = kind

    with contextlib.closing(sqlite3.connect(legacy)) as db:
        for number, name, birth, card in db.execute(
            "SELECT MA_SO_BHXH, HO_TEN, NGAY_SINH, SO_CCCD FROM NGUOI_LAO_DONG"
        ):
            add("social insurance number", number)
            add("name", name)
            add("citizen ID", card)
            add("birth date", birth)
            parts = birth.strip().split("/") if isinstance(birth, str) else []
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                with contextlib.suppress(ValueError):
                    add("birth date", dt.date(int(parts[2]), int(parts[1]), int(parts[0])).isoformat())
        for contact, phone, email, address in db.execute(
            "SELECT NGUOI_LIEN_HE, DIEN_THOAI, EMAIL, DIA_CHI FROM DM_DONVI"
        ):
            for kind, value in (("name", contact), ("phone", phone), ("e-mail", email), ("address", address)):
                add(kind, value)
    return values


def _leaks(texts: dict[str, str], values: dict[str, str]) -> dict[str, list[str]]:
    found = {}
    for where, text in texts.items():
        hits = sorted(f"{kind}: {value}" for value, kind in values.items() if value in text)
        if hits:
            found[where] = hits[:5]
    return found


def _text_files(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    texts = {}
    for path in root.rglob("*"):
        if (
            path.is_file()
            and path.suffix in (".html", ".json", ".md", ".jsonl", ".head", ".css", ".txt")
            and path.name not in skip
        ):
            texts[str(path.relative_to(root.parent))] = path.read_text(encoding="utf-8", errors="replace")
    return texts


def test_no_personal_value_in_reports_data_docs_ledger_artifacts_or_figures(site):
    from flows.reconcile_site import reconciliation_markdown
    from validation.report import build_site_report
    from validation.report_artifacts import accounting_rows, report_markdown

    migrated, validation, reconciliation = site
    base = migrated.inventory.parent
    values = _personal_values(base / "legacy" / f"{SITE}.sqlite")
    assert sum(kind == "social insurance number" for kind in values.values()) > 20  # the test has teeth
    assert {"name", "birth date", "citizen ID", "phone", "e-mail", "address"} <= set(values.values())

    # The outreach CSV holds contact details by design (0600, for the office): everything else may not.
    texts = {
        **_text_files(base / "work", skip=("reregistration-outreach.csv",)),
        **_text_files(base / "for-the-auditor"),
    }
    assert any(name.endswith("validation-report.json") for name in texts)
    assert any("data-docs" in name for name in texts) and any(name.endswith("assessment.md") for name in texts)
    assert any(name.endswith("reconciliation.html") for name in texts)
    app = migrated.app
    report = build_site_report(app.control_store, SITE, run_id=validation.run_id)
    texts["artifact: validation markdown"] = report_markdown(report)
    texts["artifact: accounting table"] = json.dumps(accounting_rows(report), ensure_ascii=False)
    texts["artifact: reconciliation markdown"] = reconciliation_markdown(SITE, reconciliation)
    with app.control_store.engine.connect() as conn:
        for table, column in (("ctl_runs", "figures"), ("ctl_runs", "error"), ("ctl_table_figures", "figures")):
            for n, (text,) in enumerate(conn.execute(sa.text(f"SELECT {column} FROM {table}"))):
                texts[f"control store {table}.{column} #{n}"] = text or ""
    assert _leaks(texts, values) == {}

    # ... and yet the examples are there, masked: the report still shows what is wrong and where.
    data = json.loads(Path(validation.reports.json_).read_text(encoding="utf-8"))
    persons = data["rejects"]["tables"]["NGUOI_LAO_DONG"]["examples"]
    keys = [e["legacy_key"] for listed in persons.values() for e in listed]
    assert keys and all("*" in key for key in keys)
    assert data["personal_data"] == {"examples": "masked", "notice": MASKED_NOTICE}
    html = Path(validation.reports.html).read_text(encoding="utf-8")
    assert 'id="personal-data"' in html and "masked" in html
    docs = "".join(v for k, v in texts.items() if "data-docs/legacy" in k and "NGUOI_LAO_DONG" in k)
    assert "****" in docs  # the legacy profile's unexpected values, masked
    assert (
        json.loads(Path(reconciliation.reports["json"]).read_text(encoding="utf-8"))["personal_data"]["examples"]
        == "masked"
    )


def _loose(paths) -> list[tuple[str, str]]:
    found = []
    for root in paths:
        found += [(str(p), oct(mode)) for p, mode in loose_modes(root)]
    return found


def test_every_file_with_legacy_data_is_readable_by_its_owner_only(site):
    migrated, _validation, _reconciliation = site
    base = migrated.inventory.parent
    roots = [base / "work", base / "backups", base / "for-the-auditor", base / "scratch" / "chain-files"]
    assert all(root.is_dir() for root in roots)
    assert _loose(roots) == []
    databases = [
        base / "scratch" / "chain.sqlite",
        base / "new-system" / "target.sqlite",
        base / "work" / "control.sqlite",
    ]
    for database in databases:
        for path in (database, *(Path(f"{database}{s}") for s in ("-wal", "-shm", "-journal"))):
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    outreach = list((base / "work").rglob("reregistration-outreach.csv"))
    assert outreach and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in outreach)


def test_the_register_names_every_copy_and_the_scratch_ones_are_destroyed(site, capsys):
    migrated, validation, reconciliation = site
    app, base = migrated.app, migrated.inventory.parent
    # A staging table a load would have left (they are TEMPORARY: the check must still look).
    target = app.target_engine()
    with target.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ts24_stage_insured_persons_0badc0de (legacy_key TEXT)")
    assert [t.name for t in leftover_staging_tables(target)] == ["ts24_stage_insured_persons_0badc0de"]

    copies = remaining_copies(app, SITE)
    kinds = {c.kind for c in copies}
    assert kinds == set(CopyKind)
    for copy in copies:
        if copy.exists and copy.path is not None:
            assert copy.path.exists(), copy
        assert copy.holds and copy.why and copy.location
    by_kind = {kind: [c for c in copies if c.kind == kind] for kind in CopyKind}
    assert by_kind[CopyKind.BACKUP_CHAIN][0].path == base / "backups" / SITE
    assert {c.run_id for c in by_kind[CopyKind.REPORT]} >= {validation.run_id, reconciliation.run_id}
    assert all(c.disposition == Disposition.KEPT_MASKED for c in by_kind[CopyKind.REPORT] if "reports" in c.path.parts)
    assert {c.path.name for c in by_kind[CopyKind.REPORT] if c.disposition == Disposition.KEPT_BY_DESIGN} == {
        "latest"
    }  # the site's latest/ page: no row values
    assert by_kind[CopyKind.OUTREACH_CSV][0].disposition == Disposition.DELETE_AFTER_USE
    assert by_kind[CopyKind.REPORT_COPY][0].path == (base / "for-the-auditor").resolve()
    scratch = by_kind[CopyKind.SCRATCH_RESTORE]
    assert sorted(c.path for c in scratch) == sorted(
        [(base / "scratch" / "chain.sqlite").resolve(), (base / "scratch" / "chain-files").resolve()]
    )
    assert all(c.exists and c.destroyable and c.disposition == Disposition.DESTROY_WITH_SITE for c in scratch)
    staging = by_kind[CopyKind.STAGING_TABLES]
    assert [c.exists for c in staging] == [True] and staging[0].location.endswith("0badc0de")
    assert by_kind[CopyKind.TRANSFORM_TEMP][0].disposition == Disposition.NONE_LEFT
    assert "social insurance numbers" in by_kind[CopyKind.CONTROL_STORE][0].holds

    # A report written before examples were masked is named as one that may show personal data.
    older = base / "work" / "sites" / SITE / "reports" / "older-run"
    older.mkdir()
    (older / "validation-report.json").write_text("{}", encoding="utf-8")
    (entry,) = [c for c in remaining_copies(app, SITE) if c.path == older]
    assert entry.disposition == Disposition.KEPT_UNMASKED and "rebuild it" in entry.holds
    (older / "validation-report.json").unlink()
    older.rmdir()

    capsys.readouterr()
    assert main(["-i", str(migrated.inventory), "--json", "sites", "copies", SITE, "--destroy-scratch"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed["destroyed"]["destroyed"]) == 2
    assert listed["destroyed"]["staging_tables_dropped"] == ["ts24_stage_insured_persons_0badc0de"]
    assert not (base / "scratch" / "chain.sqlite").exists() and not (base / "scratch" / "chain-files").exists()
    assert not list((base / "scratch").glob("chain.sqlite-*"))
    after = remaining_copies(app, SITE)
    gone = [c for c in after if c.kind == CopyKind.SCRATCH_RESTORE]
    assert gone and all(not c.exists and c.disposition == Disposition.DESTROYED for c in gone)
    assert [c.exists for c in after if c.kind == CopyKind.STAGING_TABLES] == [False]
    assert leftover_staging_tables(target) == []
    run = app.control_store.latest_run(SITE, "destroy-copies")
    restore_run = gone[0].run_id
    assert run is not None and sorted(run.figures["destroyed"]) == [f"{restore_run}:database", f"{restore_run}:files"]
    ledger = (base / "work" / "ledger" / f"{SITE}.jsonl").read_text(encoding="utf-8")
    assert '"destroy-copies"' in ledger


@pytest.mark.postgres
def test_a_scratch_restore_into_a_server_database_is_recorded_and_dropped(demo_site, pg_url, monkeypatch):
    from ts24_migrate.core.secrets import Secret, redact_url
    from ts24_migrate.runs.app import App
    from ts24_migrate.runs.backup import backup_step, restore_step

    demo = demo_site(scale=0.02)
    app = App(demo.inventory)
    assess_step(app, demo.site_id)
    backup_step(app, demo.site_id)
    monkeypatch.setenv("TS24_TEST_SCRATCH_URL", pg_url)
    restore_step(
        app,
        demo.site_id,
        identity=demo.identity,
        into_url=Secret(pg_url),
        files_dir=demo.folder / "restored-files",
        into_url_env="TS24_TEST_SCRATCH_URL",
        compare_live=False,
    )
    copies = [c for c in remaining_copies(app, demo.site_id) if c.kind == CopyKind.SCRATCH_RESTORE]
    database = next(c for c in copies if c.path is None)
    assert database.exists and database.location == redact_url(pg_url)
    engine = sa.create_engine(pg_url)
    assert "NGUOI_LAO_DONG" in sa.inspect(engine).get_table_names()

    monkeypatch.delenv("TS24_TEST_SCRATCH_URL")  # out of sight: listed as still there, not destroyed
    result = destroy_scratch_copies(app, demo.site_id)
    assert result["not_destroyed"] and "TS24_TEST_SCRATCH_URL" in result["not_destroyed"][0]
    assert "NGUOI_LAO_DONG" in sa.inspect(engine).get_table_names()

    monkeypatch.setenv("TS24_TEST_SCRATCH_URL", pg_url)
    result = destroy_scratch_copies(app, demo.site_id)
    assert len(result["destroyed"]) == 1 and not result["not_destroyed"]
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()
    after = [c for c in remaining_copies(app, demo.site_id) if c.kind == CopyKind.SCRATCH_RESTORE]
    assert all(not c.exists and c.disposition == Disposition.DESTROYED for c in after)
    record = scratch_record(Secret(pg_url), None, tables=["B", "A"], url_env="X")
    assert record["tables"] == ["A", "B"] and record["sqlite_path"] is None
    app.close()
