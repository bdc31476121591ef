"""The outcome line every stage command ends with: verdict, the site's state, the report, the next step.

    outcome: PASSED | site hn-01: VALIDATED | report: work/sites/hn-01/reports/<run>/validation-report.html |
      next (IT): ts24-migrate -i sites.yaml reconcile run hn-01 (follow the in-flight dossiers ...)

(one line). With --json the same is the "outcome" object of the output. A
command that fails (verdict failed, refused, unreachable) prints the line too,
before the one-line error, and the App keeps it as `failed_outcome` for the JSON document.

Example::

    with stage_outcome(app, site_id) as outcome:
        result = load_step(app, site_id)
        outcome.emit(result, human_text)                 # DONE
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ts24_migrate.core.errors import GateRefused, Ts24Error, UnreachableError, VerificationError
from ts24_migrate.runs.app import App

if TYPE_CHECKING:  # the control store (SQLAlchemy) loads when a command runs, not for --help
    from ts24_migrate.core.results import StageResult
    from ts24_migrate.runs.site_life import Outcome

COMMANDS: list = []  # helpers only; no command here


def verdict_of(exc: BaseException) -> str:
    if isinstance(exc, VerificationError):
        return "FAILED"
    if isinstance(exc, GateRefused):
        return "REFUSED"
    if isinstance(exc, UnreachableError):
        return "STOPPED"
    return "ERROR"


def site_outcome(app: App, site_id: str, verdict: str, report: str | Path | None = None) -> Outcome:
    """The outcome of a command on a site as the control store now says (the next step included)."""
    from ts24_migrate.runs.latest import latest_dir
    from ts24_migrate.runs.site_life import Outcome, SiteFacts, next_step

    facts = SiteFacts.read(app, site_id)
    if report is None:
        index = latest_dir(app, site_id) / "index.html"
        report = index if index.exists() else None
    return Outcome(site_id, verdict, facts.state, Path(report) if report else None, next_step(facts), facts.inventory)


@dataclass
class OutcomeLine:
    app: App
    site_id: str
    emitted: bool = False

    def emit(
        self,
        data: dict[str, Any] | StageResult,
        human: str,
        *,
        verdict: str = "DONE",
        report: str | Path | None = None,
    ) -> Outcome:
        """Print the command's result (a dict or a typed stage result), then its outcome line (with
        --json: one object holding both)."""
        from ts24_migrate.core.results import jsonable

        outcome = site_outcome(self.app, self.site_id, verdict, report)
        self.emitted = True
        self.app.emit({**jsonable(data), "outcome": outcome.to_dict()}, f"{human}\n{outcome.line()}")
        return outcome


@contextmanager
def stage_outcome(app: App, site_id: str) -> Iterator[OutcomeLine]:
    """Yield an OutcomeLine; when the command fails before emitting, print the failure's outcome line."""
    line = OutcomeLine(app, site_id)
    try:
        yield line
    except Ts24Error as exc:
        outcome = None
        if not line.emitted:
            try:
                outcome = site_outcome(app, site_id, verdict_of(exc))
            except Exception:  # e.g. the control store is what failed: the error line says it all
                outcome = None
        if outcome is not None:
            app.failed_outcome = outcome.to_dict()
            if not app.json_output:
                click.echo(outcome.line())
        raise
