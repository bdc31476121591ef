"""The validate step: the verdict on a migrated site.

Holds the stages' figures against each other and against the target
(accounting, parity, target expectations, the backup's verification), profiles
the legacy data (descriptive), records every result in the control store, then
writes the auditor's report from the control store alone (validation/report.py).
The verdict fails, after everything is recorded, when any target expectation
fails, parity is not exact, the accounting does not add up, or the latest
backup is not verified: a ValidationFailed (a VerificationError, exit code 1)
that carries the run's ValidationSummary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from ts24_migrate.core.control_store import RunRecord, SiteState
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.personal_data import Masking
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.secrets import redact_url
from ts24_migrate.core.stage_runs import stage_run
from ts24_migrate.runs.app import App
from validation import (
    accounting_check,
    figures_from_stages,
    parity_for_site,
    recorded_counts,
    run_legacy_profile,
    run_target_suites,
)
from validation.report import (
    FOLDERS,
    PERSONAL_DATA,
    REPORT_STEM,
    STAGE,
    TARGET_PREFIX,
    build_site_report,
    legacy_entry_name,
    write_site_report,
)
from validation.report_artifacts import ReportArtifacts, report_artifacts
from validation.report_figures import (
    backup_signature,
    backup_verification,
    dossiers_by_status,
    flag_summary,
    ledger_head,
    reject_examples,
)

from .backup import trusted_public_key
from .gates import require_loaded
from .latest import updates_latest
from .server_check import check_legacy_server

Progress = Callable[[str, int, int], None]
# Keys kept per kind (missing, extra, changed) and table; the counts are always complete.
PARITY_KEYS_KEPT = 200
_STEPS = ("target expectations", "legacy profile", "parity", "accounting", "backup")


class TargetExpectationFigures(StageResult):
    """The GX suites on the target's tables, in sum (recorded as the run's `target_expectations`)."""

    success: bool
    evaluated: int
    failed: int
    table_count: int
    data_docs: str
    notes: list[Any]


class ParityFigures(StageResult):
    """The target against what the load wrote, in sum (recorded as the run's `parity`)."""

    exact: bool
    differences: int
    missing: int
    extra: int
    changed: int
    table_count: int
    notes: list[Any]


class AccountingFigures(StageResult):
    """Source rows against backed-up, loaded and rejected rows, in sum (recorded as the run's `accounting`)."""

    ok: bool
    tables: int
    mapped_tables: int
    tables_with_problems: int
    source: int
    backed_up: int
    loaded: int
    rejected: int
    conflicts: int


class BackupReference(StageResult):
    backup_id: str | None
    verified: bool | None


class ReportPaths(StageResult):
    html: str
    json_: str = Field(alias="json")


class DataDocs(StageResult):
    target: str
    legacy: str


class ValidationSummary(StageResult):
    """What validate_step returns (and ValidationFailed carries): the verdict and its key figures,
    read back from the report written from the control store."""

    run_id: str
    site_id: str
    passed: bool
    verdict: str
    reasons: list[str]
    accounting: AccountingFigures
    parity: ParityFigures
    target_expectations: TargetExpectationFigures
    backup: BackupReference
    reports: ReportPaths
    data_docs: DataDocs


class ValidationFailed(VerificationError):
    """The verdict failed; the run, its figures and the report are recorded, and `result` sums them up."""

    def __init__(self, message: str, result: ValidationSummary | None = None):
        super().__init__(message)
        self.result = result


@dataclass
class Checks:
    """What one validation found: the run's figures, per-table figures, and the verdict."""

    figures: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons


def _failed_expectations(suite: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in suite["expectations"] if not e["success"]]


def _redacted(values: list[Any]) -> list[Any]:
    return [redact_url(v) if isinstance(v, str) else v for v in values]


def _profile_entry(suite: dict[str, Any]) -> dict[str, Any]:
    """A legacy table's profile, kept small: counts and what failed, with a few example values."""
    rows = suite["expectations"][0].get("observed_value") if suite["expectations"] else None
    failed = [{**e, "examples": _redacted(e.get("examples") or [])} for e in _failed_expectations(suite)]
    # The suite's name says where the table is in Data Docs (GX names its pages after a file-safe stem).
    return {
        "evaluated": suite["evaluated"],
        "failed": suite["failed"],
        "rows": rows,
        "failed_expectations": failed,
        "data_docs_suite": suite["name"],
    }


def _capped_parity(name: str, table: dict[str, Any], masking: Masking) -> dict[str, Any]:
    capped = dict(table)
    for kind in ("missing", "extra", "changed"):
        capped[f"{kind}_count"] = len(table[kind])
        # An insured person's legacy key is the social insurance number: masked like one.
        capped[kind] = [
            {**entry, "legacy_key": masking.legacy_key(name, entry.get("legacy_key"))}
            for entry in table[kind][:PARITY_KEYS_KEPT]
        ]
    return capped


def _describe_expectation(table: str, e: dict[str, Any]) -> str:
    what = e.get("description") or e["expectation"] + (f" on {e['column']}" if e.get("column") else "")
    count = f" ({e['unexpected_count']} rows)" if e.get("unexpected_count") else ""
    return f"{table}: {what}{count}" + (f" [could not be evaluated: {e['error']}]" if e.get("error") else "")


def _check_target(checks: Checks, target, site_id: str, docs: Path, masking: Masking) -> None:
    suites = run_target_suites(target, site_id=site_id, docs_dir=docs, masking=masking)
    data = suites.to_dict()
    for suite in data["suites"]:
        checks.tables.setdefault(TARGET_PREFIX + suite["table"], {})["expectations"] = suite
    checks.figures["target_expectations"] = TargetExpectationFigures(
        success=data["success"],
        evaluated=data["evaluated"],
        failed=data["failed"],
        table_count=len(data["suites"]),
        data_docs=str(suites.data_docs_index),
        notes=data["notes"],
    ).to_dict()
    if not data["success"]:
        failed = [_describe_expectation(s["table"], e) for s in data["suites"] for e in _failed_expectations(s)]
        checks.reasons.append(
            f"target expectations: {data['failed']} of {data['evaluated']} failed: "
            + "; ".join(failed[:3])
            + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
        )


def _check_legacy_profile(checks: Checks, legacy, docs: Path, sample_rows: int | None, masking: Masking) -> None:
    profile = run_legacy_profile(legacy, docs_dir=docs, sample_rows=sample_rows, masking=masking)
    data = profile.to_dict()
    for suite in data["suites"]:
        checks.tables.setdefault(legacy_entry_name(suite["table"]), {})["legacy_profile"] = _profile_entry(suite)
    checks.figures["legacy_profile"] = {
        "clean": data["success"],
        "evaluated": data["evaluated"],
        "failed": data["failed"],
        "table_count": len(data["suites"]),
        "data_docs": str(profile.data_docs_index),
        "notes": data["notes"],
        "descriptive": True,
    }


def _check_parity(checks: Checks, target, site_id: str, masking: Masking) -> None:
    report = parity_for_site(target, site_id=site_id).to_dict()
    counts = {kind: sum(len(t[kind]) for t in report["tables"].values()) for kind in ("missing", "extra", "changed")}
    for name, table in report["tables"].items():
        checks.tables.setdefault(TARGET_PREFIX + name, {})["parity"] = _capped_parity(name, table, masking)
    checks.figures["parity"] = ParityFigures(
        exact=report["exact"],
        differences=report["differences"],
        **counts,
        table_count=len(report["tables"]),
        notes=report["notes"],
    ).to_dict()
    if not report["exact"]:
        named = [
            f"{name}: {len(t[kind])} {kind} ({', '.join(str(d['target_key']) for d in t[kind][:5])}"
            + (", ..." if len(t[kind]) > 5 else "")
            + ")"
            for name, t in report["tables"].items()
            for kind in ("missing", "extra", "changed")
            if t[kind]
        ]
        checks.reasons.append(
            f"parity: {report['differences']} difference(s) between the target and what the "
            f"load wrote: " + "; ".join(named)
        )


def _check_accounting(
    checks: Checks, app: App, target, site_id: str, backup_run: RunRecord, load_run: RunRecord
) -> None:
    store = app.control_store
    figures = figures_from_stages(store.table_figures(load_run.run_id), store.table_figures(backup_run.run_id))
    rows = accounting_check(figures, recorded=recorded_counts(target, site_id=site_id))
    for row in rows:
        checks.tables.setdefault(legacy_entry_name(row.table), {})["accounting"] = row.to_dict()
    mapped = [r for r in rows if r.mapped]
    checks.figures["accounting"] = AccountingFigures(
        ok=all(r.ok for r in rows),
        tables=len(rows),
        mapped_tables=len(mapped),
        tables_with_problems=sum(not r.ok for r in rows),
        source=sum(r.source for r in rows),
        backed_up=sum(r.backed_up or 0 for r in rows),
        loaded=sum(r.loaded or 0 for r in mapped),
        rejected=sum(r.rejected or 0 for r in mapped),
        conflicts=sum(r.conflicts or 0 for r in mapped),
    ).to_dict()
    for row in rows:
        if not row.ok:
            checks.reasons.append(f"accounting of {row.table}: " + "; ".join(row.problems))


def _check_backup(checks: Checks, app: App, site_id: str, backup_run: RunRecord) -> None:
    recorded = backup_run.figures
    backup_id = recorded.get("backup_id")
    verification = backup_verification(app.control_store, site_id, backup_id)
    signature = backup_signature(
        Path(recorded["backup_dir"]) if recorded.get("backup_dir") else None,
        public_key_b64=trusted_public_key(app, None),
        manifest_fingerprint=recorded.get("manifest_fingerprint"),
    )
    checks.figures["backup"] = {
        "backup_id": backup_id,
        "manifest_fingerprint": recorded.get("manifest_fingerprint"),
        "verified": verification["verified"],
        "verification": verification,
        "signature": signature,
    }
    if not verification["verified"]:
        checks.reasons.append(f"backup not verified: {verification['summary']}")
    if not signature["valid"]:
        checks.reasons.append(f"backup manifest signature: {'; '.join(signature['problems'])}")


def run_checks(
    app: App,
    site_id: str,
    *,
    folder: Path,
    backup_run: RunRecord,
    load_run: RunRecord,
    legacy_sample_rows: int | None = None,
    progress: Progress | None = None,
) -> Checks:
    """Every check of a validation; nothing recorded yet (validate_step does that)."""
    site = app.site(site_id)
    target, legacy = app.current_target(), app.legacy_engine(site)
    masking = app.inventory.masking
    checks = Checks()
    steps = [
        lambda: _check_target(checks, target, site_id, folder / "data-docs" / "target", masking),
        lambda: _check_legacy_profile(checks, legacy, folder / "data-docs" / "legacy", legacy_sample_rows, masking),
        lambda: _check_parity(checks, target, site_id, masking),
        lambda: _check_accounting(checks, app, target, site_id, backup_run, load_run),
        lambda: _check_backup(checks, app, site_id, backup_run),
    ]
    for done, (name, step) in enumerate(zip(_STEPS, steps)):
        if progress:
            progress(name, done, len(steps))
        step()
    if progress:
        progress("done", len(steps), len(steps))
    examples = reject_examples(target, site_id=site_id, masking=masking)
    for table, by_reason in examples.items():
        checks.tables.setdefault(legacy_entry_name(table), {})["reject_examples"] = by_reason
    for table, flagged in flag_summary(target, site_id=site_id, masking=masking).items():
        checks.tables.setdefault(legacy_entry_name(table), {})["flags"] = flagged
    checks.figures["dossiers_by_status"] = dossiers_by_status(target, site_id=site_id)
    checks.figures[PERSONAL_DATA] = masking.label  # how the examples were recorded; the report says so
    return checks


@updates_latest
def validate_step(
    app: App,
    site_id: str,
    *,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
    legacy_sample_rows: int | None = None,
) -> ValidationSummary:
    """Validate a site and write its report; state VALIDATED when the verdict passes.

    Returns the summary (run id, verdict, key figures, report paths). A failed
    verdict raises ValidationFailed once the run, its figures and the report are
    recorded; its `result` is the summary.
    """
    facts = require_loaded(app, site_id)
    assert facts.backup is not None and facts.load is not None  # require_loaded refused the site otherwise
    backup_run, load_run = facts.backup.run, facts.load
    store, ledger = app.control_store, app.ledger(site_id)
    sources = {
        "backup": backup_run.run_id,
        "load": load_run.run_id,
        "verify-backup": None,
        "assess": getattr(store.latest_run(site_id, "assess"), "run_id", None),
    }
    checks: Checks | None = None
    folder: Path | None = None
    try:
        with stage_run(
            store, ledger, site_id, STAGE, success_state=SiteState.VALIDATED, parent_run_id=parent_run_id
        ) as run:
            folder = app.reports_dir(site_id) / run.run_id
            check_legacy_server(app, site_id, run)
            checks = run_checks(
                app,
                site_id,
                folder=folder,
                backup_run=backup_run,
                load_run=load_run,
                legacy_sample_rows=legacy_sample_rows,
                progress=progress,
            )
            sources["verify-backup"] = checks.figures["backup"]["verification"]["run_id"]
            for name, figures in checks.tables.items():
                store.record_table(site_id, run.run_id, name, figures)
            run.figures.update(checks.figures)
            run.figures.update(
                {
                    "verdict": "passed" if checks.passed else "failed",
                    "passed": checks.passed,
                    "reasons": checks.reasons,
                    "sources": sources,
                    "ledger_head": ledger_head(ledger),
                    FOLDERS: PathNames.recordable(app.inventory),
                    "report": {kind: str(folder / f"{REPORT_STEM}.{kind}") for kind in ("html", "json")},
                }
            )
            if not checks.passed:
                more = f" (and {len(checks.reasons) - 1} more)" if len(checks.reasons) > 1 else ""
                # Recorded as a VerificationError (fleet status shows the documented class) ...
                raise VerificationError(f"validation of site {site_id} failed: {checks.reasons[0]}{more}")
    except VerificationError as exc:
        if checks is None or checks.passed or folder is None:
            raise
        # ... and raised with the summary of the report written from what was recorded.
        failed = ValidationFailed(str(exc), report_summary(app, site_id, run.run_id, folder))
        for note in getattr(exc, "__notes__", []):  # e.g. the ledger could not record the failure
            failed.add_note(note)
        raise failed from None
    return report_summary(app, site_id, run.run_id, folder)


def report_summary(app: App, site_id: str, run_id: str, folder: Path) -> ValidationSummary:
    """Write the report from the control store and return the key figures."""
    report = build_site_report(app.control_store, site_id, run_id=run_id, names=PathNames.for_inventory(app.inventory))
    paths = write_site_report(report, folder)
    data = report.to_dict()
    return ValidationSummary(
        run_id=run_id,
        site_id=site_id,
        passed=report.passed,
        verdict=data["verdict"]["text"],
        reasons=data["verdict"]["reasons"],
        accounting=AccountingFigures.model_validate(data["accounting"]["totals"]),
        parity=ParityFigures.model_validate({k: v for k, v in data["parity"].items() if k != "tables"}),
        target_expectations=TargetExpectationFigures.model_validate(
            {k: v for k, v in data["expectations"]["target"].items() if k != "tables"}
        ),
        backup=BackupReference(backup_id=data["backup"].get("backup_id"), verified=data["backup"].get("verified")),
        reports=ReportPaths(html=str(paths["html"]), json=str(paths["json"])),
        data_docs=DataDocs(
            **{kind: str(folder / data["expectations"][kind]["data_docs"]) for kind in ("target", "legacy")}
        ),
    )


def validation_artifacts(app: App, site_id: str, run_id: str) -> ReportArtifacts:
    """The summary of a validation run that a flow publishes as Prefect artifacts."""
    return report_artifacts(site_id, build_site_report(app.control_store, site_id, run_id=run_id))


def rebuild_report(app: App, site_id: str, run_id: str | None, out: Path | None) -> dict[str, Any]:
    """`report`: the validation report of a run (default: the latest with a verdict) rebuilt from the control
    store alone, into the run's report folder or, for an auditor, into `out` (that copy is recorded)."""
    from .copies import record_report_copy
    from .gates import require_verdict

    if run_id is None:
        require_verdict(app, site_id)
    site_report = build_site_report(
        app.control_store, site_id, run_id=run_id, names=PathNames.for_inventory(app.inventory)
    )
    run_folder = app.reports_dir(site_id) / site_report.run_id
    paths = write_site_report(site_report, out or run_folder, run_folder=run_folder)
    if out is not None:
        record_report_copy(app, site_id, site_report.run_id, out, site_report.data["personal_data"]["examples"])
    return {
        "site_id": site_id,
        "run_id": site_report.run_id,
        "passed": site_report.passed,
        "verdict": site_report.data["verdict"]["text"],
        "reports": {k: str(v) for k, v in paths.items()},
    }
