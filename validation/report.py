"""The auditor's validation report of a site, rebuilt from the control store alone.

A validate run records everything it checked (ts24_migrate/runs/validate.py):
its verdict and key figures as the run's figures, the details per table as
per-table figures (legacy tables under their own name, target tables as
``target:<name>``), and which backup, verification, load and assessment runs
it held against each other. `build_site_report` reads those runs back, and
nothing else: no database but the control store, no file. So the report can
be rebuilt anywhere, any time, and every figure it shows is the very figure
the invariants were checked with (the JSON and the HTML are two renderings of
one `SiteReport`).

Example::

    report = build_site_report(store, "hn-01")             # the latest validation
    paths = write_site_report(report, Path("reports/hn-01"))
    report.passed, paths["html"]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from load.target_schema import DOSSIER_STATUSES
from ts24_migrate.core.control_store import ControlStore, RunRecord
from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.personal_data import Masking, masking_for
from ts24_migrate.core.private_files import make_tree_private
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.reporting import write_report

from .code_legend import code_legend

FORMAT = "ts24-validation-report/1"
STAGE = "validate"
REPORT_STEM = "validation-report"
TARGET_PREFIX = "target:"  # per-table figures of a target table, apart from legacy table names
# A legacy table may itself be named "target:..." (any name is possible): such names are recorded
# under this prefix, so that they never pass for a target table (legacy_entry_name).
LEGACY_PREFIX = "legacy:"
SOURCE_STAGES = ("assess", "backup", "verify-backup", "load")
FOLDERS = "folders"  # the run's figure naming the inventory's folders (report_paths.PathNames.recordable)
PERSONAL_DATA = "personal_data"  # the run's figure: examples recorded "masked" or "shown" (personal_data.py)
DATA_DOCS_DIR = "data-docs"
DATA_DOCS = {kind: f"{DATA_DOCS_DIR}/{kind}/index.html" for kind in ("target", "legacy")}  # from the report's folder


@dataclass(frozen=True)
class SiteReport:
    site_id: str
    run_id: str  # the validate run
    data: dict[str, Any]  # the report's JSON
    names: PathNames = PathNames()  # how its files are named

    @property
    def passed(self) -> bool:
        return bool(self.data["verdict"]["passed"])

    def to_dict(self) -> dict[str, Any]:
        return self.data


@overload
def _run_summary(run: RunRecord) -> dict[str, Any]: ...
@overload
def _run_summary(run: None) -> None: ...
@overload
def _run_summary(run: RunRecord | None) -> dict[str, Any] | None: ...
def _run_summary(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "stage": run.stage,
        "outcome": run.outcome,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
    }


def _validate_run(store: ControlStore, site_id: str, run_id: str | None) -> RunRecord:
    if run_id is not None:
        try:
            run = store.run(run_id)
        except KeyError:
            raise UsageError(f"the control store has no run {run_id!r}") from None
        if run.site_id != site_id or run.stage != STAGE:
            raise UsageError(
                f"run {run_id} is a {run.stage} run of site {run.site_id}, not a validation of site {site_id}"
            )
        if "verdict" not in run.figures:
            raise UsageError(
                f"validate run {run_id} recorded no verdict ({run.outcome}"
                + (f": {run.error}" if run.error else "")
                + ")"
            )
        return run
    for run in reversed(store.runs(site_id, STAGE)):
        if "verdict" in run.figures:
            return run
    raise UsageError(f"site {site_id} has no validation with a verdict yet")  # the CLI's gate says what it needs


def _source_run(store: ControlStore, run_id: str | None) -> RunRecord | None:
    if run_id is None:
        return None
    try:
        return store.run(run_id)
    except KeyError:
        return None


def legacy_entry_name(table: str) -> str:
    """The name a legacy table's figures are recorded under in a validate run."""
    return LEGACY_PREFIX + table if table.startswith((TARGET_PREFIX, LEGACY_PREFIX)) else table


def _legacy_table(entry_name: str) -> str:
    return entry_name[len(LEGACY_PREFIX) :] if entry_name.startswith(LEGACY_PREFIX) else entry_name


def _accounting(
    validated: dict[str, dict[str, Any]], backup_tables: dict[str, dict[str, Any]], totals: dict[str, Any]
) -> dict[str, Any]:
    rows = []
    for table, figures in validated.items():
        if table.startswith(TARGET_PREFIX) or "accounting" not in figures:
            continue
        role = (backup_tables.get(_legacy_table(table)) or {}).get("role")
        rows.append({**figures["accounting"], "role": role})
    return {"ok": totals.get("ok"), "totals": totals, "tables": rows}


def _rejects(
    validated: dict[str, dict[str, Any]], load_tables: dict[str, dict[str, Any]], masking: Masking
) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    by_reason: dict[str, int] = {}
    for table, figures in sorted(load_tables.items()):
        reasons = figures.get("rejects_by_reason") or {}
        recorded = (validated.get(legacy_entry_name(table)) or {}).get("reject_examples") or {}
        # Masked again (masking is idempotent): a run recorded before examples were masked shows none unmasked.
        examples = {reason: [masking.example(e, table=table) for e in listed] for reason, listed in recorded.items()}
        tables[table] = {
            "target_table": figures.get("target_table"),
            "rejected": figures.get("rejected"),
            "conflicts": figures.get("conflicts"),
            "by_reason": reasons,
            "examples": examples,
        }
        for reason, count in reasons.items():
            by_reason[reason] = by_reason.get(reason, 0) + count
    return {
        "total": sum(by_reason.values()),
        "by_reason": dict(sorted(by_reason.items(), key=lambda i: (-i[1], i[0]))),
        "tables": tables,
    }


def _flags(
    validated: dict[str, dict[str, Any]], load_tables: dict[str, dict[str, Any]], masking: Masking
) -> dict[str, Any]:
    """Rows loaded with data-quality flags, by legacy table and code, with examples (report_figures.flag_summary)."""
    tables: dict[str, Any] = {}
    by_code: dict[str, int] = {}
    for table, figures in sorted(validated.items()):
        flagged = figures.get("flags")
        if table.startswith(TARGET_PREFIX) or not flagged:
            continue
        table = _legacy_table(table)
        # Masked again (idempotent), like the rejects' examples.
        examples = {
            code: [masking.example(e, table=table) for e in listed]
            for code, listed in (flagged.get("examples") or {}).items()
        }
        tables[table] = {
            "target_table": (load_tables.get(table) or {}).get("target_table"),
            "rows_flagged": flagged["by_code"],
            "examples": examples,
        }
        for code, count in flagged["by_code"].items():
            by_code[code] = by_code.get(code, 0) + count
    return {"by_code": dict(sorted(by_code.items(), key=lambda i: (-i[1], i[0]))), "tables": tables}


def _masked_expectations(suite: dict[str, Any], masking: Masking) -> dict[str, Any]:
    """A suite's expectations with their example values masked by column."""
    masked = dict(suite)
    for key in ("expectations", "failed_expectations"):
        if suite.get(key) is not None:
            masked[key] = [
                {**e, "examples": [masking.value(e.get("column"), v) for v in e.get("examples") or []]}
                for e in suite[key]
            ]
    return masked


def _expectations(figures: dict[str, Any], validated: dict[str, dict[str, Any]], masking: Masking) -> dict[str, Any]:
    target_tables = {
        name[len(TARGET_PREFIX) :]: _masked_expectations(entry["expectations"], masking)
        for name, entry in validated.items()
        if name.startswith(TARGET_PREFIX) and "expectations" in entry
    }
    legacy_tables = {
        _legacy_table(name): _masked_expectations(entry["legacy_profile"], masking)
        for name, entry in validated.items()
        if not name.startswith(TARGET_PREFIX) and "legacy_profile" in entry
    }
    return {
        "target": {**figures.get("target_expectations", {}), "tables": target_tables},
        "legacy": {**figures.get("legacy_profile", {}), "tables": legacy_tables},
    }


def _masked_parity(table: str, entry: dict[str, Any], masking: Masking) -> dict[str, Any]:
    return {
        **entry,
        **{
            kind: [{**key, "legacy_key": masking.legacy_key(table, key.get("legacy_key"))} for key in entry[kind]]
            for kind in ("missing", "extra", "changed")
            if isinstance(entry.get(kind), list)
        },
    }


def _parity(figures: dict[str, Any], validated: dict[str, dict[str, Any]], masking: Masking) -> dict[str, Any]:
    tables = {
        name[len(TARGET_PREFIX) :]: _masked_parity(name[len(TARGET_PREFIX) :], entry["parity"], masking)
        for name, entry in validated.items()
        if name.startswith(TARGET_PREFIX) and "parity" in entry
    }
    return {**figures.get("parity", {}), "tables": tables}


def _backup(figures: dict[str, Any], backup_run: RunRecord | None) -> dict[str, Any]:
    recorded = backup_run.figures if backup_run else {}
    return {
        **figures.get("backup", {}),
        **{
            key: recorded.get(key)
            for key in (
                "kind",
                "created_at",
                "completed_at",
                "tables",
                "rows",
                "parts",
                "ciphertext_bytes",
                "attachment_files",
                "warnings",
                "warning_messages",
                "backup_dir",
            )
        },
        # Views, triggers, procedures, sequences; the folder against the rows; NUL text: as the backup
        # run recorded them (ts24_migrate.runs.backup.backup_findings).
        **{
            key: recorded.get(key)
            for key in ("object_items", "objects_note", "attachment_references", "attachment_findings", "nul_text")
        },
    }


def _in_status_order(counts: dict[str, int]) -> dict[str, int]:
    """The control store keeps JSON keys sorted; dossiers read best in the life-cycle order."""
    order = {status: i for i, status in enumerate(DOSSIER_STATUSES)}
    return dict(sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def _codes(rejects: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """The legend of every code (JSON readers get the same explanations as the page)."""
    legend = code_legend()
    shown = {
        code: legend.get(code, {"action": "reject", "meaning": None, "stage": None}) for code in rejects["by_reason"]
    }
    shown.update(
        {code: legend.get(code, {"action": "flag", "meaning": None, "stage": None}) for code in flags["by_code"]}
    )
    return {"in_this_report": shown, "all": legend}


def build_site_report(
    store: ControlStore, site_id: str, *, run_id: str | None = None, names: PathNames | None = None
) -> SiteReport:
    """The report of validate run `run_id` (default: the site's latest validation with a verdict).

    Files are named from the inventory's folder (`work/...`, `backups/...`): by the
    folders the run recorded, so a report rebuilt on another machine names the
    pipeline host's files the same way, and by `names` (the current inventory's).
    """
    run = _validate_run(store, site_id, run_id)
    figures = run.figures
    sources = figures.get("sources") or {}
    runs = {stage: _source_run(store, sources.get(stage)) for stage in SOURCE_STAGES}
    validated = store.table_figures(run.run_id)
    backup_tables = store.table_figures(runs["backup"].run_id) if runs["backup"] else {}
    load_tables = store.table_figures(runs["load"].run_id) if runs["load"] else {}
    assess = runs["assess"]
    masking = masking_for(figures.get(PERSONAL_DATA))
    rejects = _rejects(validated, load_tables, masking)
    flags = _flags(validated, load_tables, masking)
    names = PathNames.for_inventory_folders(figures.get(FOLDERS)).merged(names or PathNames())
    data: dict[str, Any] = {  # the report's JSON
        "format": FORMAT,
        "site_id": site_id,
        "rebuilt_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "site_state": store.state(site_id).value,
        "validation": _run_summary(run),
        "verdict": {
            "passed": bool(figures["passed"]),
            "text": figures["verdict"],
            "reasons": list(figures.get("reasons") or []),
        },
        "runs": {stage: _run_summary(r) for stage, r in runs.items()},
        # Stage runs killed outright (their process gone, noticed later): none of the figures
        # above comes from them; what they made durable was resumed by a later run.
        "abandoned_runs": [
            {**_run_summary(r), "abandoned_at": r.abandoned_at} for r in store.runs(site_id) if r.outcome == "abandoned"
        ],
        "accounting": _accounting(validated, backup_tables, figures.get("accounting") or {}),
        "rejects": rejects,
        "flags": flags,
        "codes": _codes(rejects, flags),
        "backup": _backup(figures, runs["backup"]),
        "expectations": _expectations(figures, validated, masking),
        "parity": _parity(figures, validated, masking),
        "dossiers_by_status": _in_status_order(figures.get("dossiers_by_status") or {}),
        "ledger": figures.get("ledger_head") or {},
        "assessment": {k: v for k, v in assess.figures.items() if k != "report"} if assess else None,
        "recorded_paths": figures.get("report") or {},
        "personal_data": {"examples": masking.label, "notice": masking.notice},
    }
    for kind in DATA_DOCS:  # where they are beside the report, wherever it is written
        data["expectations"][kind]["data_docs"] = DATA_DOCS[kind]
    return SiteReport(site_id, run.run_id, names.scrub(data), names)


def write_site_report(report: SiteReport, folder: Path, *, run_folder: Path | None = None) -> dict[str, Path]:
    """Write validation-report.html and .json into `folder`; returns {"html": ..., "json": ...}.

    With `run_folder` (the validate run's own report folder, when `folder` is
    another one), its Data Docs are copied along, made static and offline: the
    folder then holds everything the report shows and links to, and opens on a
    machine without network.
    """
    from .data_docs_offline import copy_offline, make_offline
    from .report_html import render_html

    folder = Path(folder)
    for _kind, index in DATA_DOCS.items():
        site = Path(index).parent
        source = Path(run_folder) / site if run_folder is not None else None
        if source is not None and source.resolve() != (folder / site).resolve() and (source / "index.html").is_file():
            copy_offline(source, folder / site)
        elif (folder / index).is_file():
            make_offline(folder / site)  # Data Docs of a run validated before they were made offline
    make_tree_private(folder / DATA_DOCS_DIR)  # they hold legacy values: readable by their owner only
    paths = write_report(folder, REPORT_STEM, report.to_dict(), render_html(report, folder=folder), names=report.names)
    return {"html": paths["html"], "json": paths["json"]}
