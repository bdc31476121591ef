"""`WORK_DIR/sites/<site>/latest/`: one page that points at a site's latest reports.

`index.html` (for people) and `index.json` (for scripts) list the site's
state, the next step and, per stage, its latest run with a link to its
report. Links are relative (`../reports/<run>/...`), never symlinks, so the
site folder can be copied or archived whole and the page still works. Every
step rewrites the page when it ends, whether it succeeded or failed.

Example::

    index = refresh_latest(app, "hn-01")    # work/sites/hn-01/latest/index.html
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ts24_migrate.core.control_store import RunRecord
from ts24_migrate.core.durable import fsync_dir
from ts24_migrate.core.private_files import private_dir, write_private_text
from ts24_migrate.core.reporting import render
from ts24_migrate.runs.app import App

from .site_life import SiteFacts, next_step

T = TypeVar("T")
LATEST_DIR = "latest"
STAGES = ("assess", "backup", "verify-backup", "load", "validate", "reconcile", "restore-check", "restore-chain")


def latest_dir(app: App, site_id: str) -> Path:
    return app.inventory.site_dir(site_id) / LATEST_DIR


def _report_paths(run: RunRecord) -> dict[str, str]:
    """The report files a run wrote, by kind, as its figures recorded them."""
    report = run.figures.get("report")
    paths: dict[str, str] = {}
    if isinstance(report, str):
        paths["html"] = report
    elif isinstance(report, dict):
        paths.update({k: v for k, v in report.items() if isinstance(v, str)})
    docs = (run.figures.get("target_expectations") or {}).get("data_docs")
    if isinstance(docs, str):
        paths["data docs"] = docs
    return paths


def _summary(run: RunRecord) -> str:
    f = run.figures
    if run.outcome != "succeeded":
        return f"{run.outcome}: {run.error or ''}"[:300]
    if run.stage == "backup":
        return (
            f"backup {f.get('backup_id')}"
            + (" (reused: the source was unchanged)" if f.get("reused") else "")
            + f", {f.get('rows')} rows, {f.get('parts')} parts"
        )
    if run.stage == "verify-backup":
        return f"backup {f.get('backup_id')}: {f.get('mode')}, {f.get('parts_checked')} parts checked"
    if run.stage == "load":
        return f"{f.get('loaded')} loaded, {f.get('rejected')} rejected, {f.get('conflicts')} conflicts"
    if run.stage == "validate":
        return f"verdict {str(f.get('verdict')).upper()}"
    if run.stage == "reconcile":
        return "drained" if f.get("drained") else f"not drained, {f.get('in_flight')} in flight"
    if run.stage == "assess":
        return f"{f.get('tables')} tables, {f.get('rows')} rows"
    return "succeeded"


def _link(target: str, folder: Path) -> str:
    try:
        return os.path.relpath(target, folder)
    except ValueError:  # another drive
        return target


def site_index(app: App, site_id: str, facts: SiteFacts | None = None) -> dict[str, Any]:
    facts = facts or SiteFacts.read(app, site_id)
    store = app.control_store
    folder = latest_dir(app, site_id)
    stages = []
    for stage in STAGES:
        runs = store.runs(site_id, stage)
        finished = [r for r in runs if r.outcome != "running"]
        if not finished:
            continue
        run = finished[-1]
        stages.append(
            {
                "stage": stage,
                "run_id": run.run_id,
                "outcome": run.outcome,
                "finished_at": run.finished_at,
                "summary": _summary(run),
                "reports": {kind: _link(path, folder) for kind, path in _report_paths(run).items()},
            }
        )
    backup = facts.backup
    return {
        "site_id": site_id,
        "state": facts.state.value,
        "backup": ({"backup_id": backup.backup_id, "verification": backup.verification.value} if backup else None),
        "next": next_step(facts).to_dict(facts.inventory),
        "stages": stages,
    }


def _html(index: dict[str, Any]) -> str:
    """The page (ts24_migrate/runs/templates/latest.html.j2) over the index; links as written, POSIX form."""
    stages = [
        {**entry, "links": [(kind, Path(path).as_posix()) for kind, path in entry["reports"].items()]}
        for entry in index["stages"]
    ]
    return render(
        "ts24_migrate.runs",
        "latest.html.j2",
        title=f"Site {index['site_id']}: {index['state']}",
        subtitle="Links open each stage's latest report; this page is rewritten after every stage run.",
        next=index["next"],
        backup=index["backup"],
        stages=stages,
    )


def refresh_latest(app: App, site_id: str) -> Path:
    """Rewrite the site's latest/index.html and index.json; returns the HTML page's path."""
    index = site_index(app, site_id)
    folder = private_dir(latest_dir(app, site_id))  # like every file of the work folder: its owner only
    for name, text in (
        ("index.json", json.dumps(index, indent=2, ensure_ascii=False, default=str)),
        ("index.html", _html(index)),
    ):
        temporary = folder / f".{name}.tmp"
        write_private_text(temporary, text)
        os.replace(temporary, folder / name)  # readers never see half a page
    fsync_dir(folder)
    return folder / "index.html"


def updates_latest(step: Callable[..., T]) -> Callable[..., T]:
    """Decorate a step `step(app, site_id, ...)`: the site's latest/ page is rewritten when it ends.

    A failed step rewrites it too (its report, if any, is the one to read); if
    the page cannot be written then, the step's own error is the one raised.
    """

    @functools.wraps(step)
    def run(app: App, site_id: str, *args: Any, **kwargs: Any) -> T:
        try:
            result = step(app, site_id, *args, **kwargs)
        except BaseException as exc:
            try:
                refresh_latest(app, site_id)
            except Exception as error:
                exc.add_note(f"the site's latest/ page was not rewritten: {type(error).__name__}: {error}")
            raise
        refresh_latest(app, site_id)
        return result

    return run
