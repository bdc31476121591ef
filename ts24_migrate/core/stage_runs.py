"""One way to run a stage: control-store run record + audit-ledger events.

Every stage, whether the CLI or a Prefect task calls it, runs inside
`stage_run`, so each run is recorded with its figures, each success moves the
site's state and each outcome is a signed ledger event. A failure records the
(already redacted) one-line error and re-raises.

A run killed outright (SIGKILL, power loss) records nothing: it stays
`running`. The next run of the site first marks such runs `abandoned` when
their process is gone (control_store.close_abandoned_runs, rule in
run_liveness), with an `abandoned` ledger event each; while a run works, a
heartbeat stamps it, so runs of other hosts can be judged too.

Example::

    with stage_run(store, ledger, "hn-01", "assess", success_state=SiteState.ASSESSED) as run:
        run.figures["tables"] = 14
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .control_store import ControlStore, RunRecord, SiteState
from .run_liveness import Heartbeat
from .secrets import redact_url


class EventLedger(Protocol):
    """Where a run's events go: an audit.ledger.Ledger (the kernel cannot import the audit package)."""

    def append(
        self, site_id: str, stage: str, event: str, data: Mapping[str, Any] | None, run_id: str | None = None
    ) -> object: ...


@dataclass
class StageRun:
    run_id: str
    site_id: str
    stage: str
    figures: dict[str, Any] = field(default_factory=dict)
    # A stage may decide its end state from what it found (e.g. reconcile: RECONCILING or DRAINED).
    success_state: SiteState | None = None


@contextmanager
def stage_run(
    store: ControlStore,
    ledger: EventLedger | None,
    site_id: str,
    stage: str,
    *,
    success_state: SiteState | None = None,
    parent_run_id: str | None = None,
) -> Iterator[StageRun]:
    """Record a stage run; `ledger` is an audit.ledger.Ledger or None (tests of plain logic)."""
    close_abandoned_runs(store, ledger, site_id)
    run_id = store.start_run(site_id, stage, parent_run_id=parent_run_id)
    run = StageRun(run_id, site_id, stage, success_state=success_state)
    if ledger is not None:
        ledger.append(site_id, stage, "started", {}, run_id=run_id)
    try:
        with Heartbeat(lambda: store.heartbeat(run_id)):
            yield run
        if run.success_state is not None:
            # A success the site's life does not allow is refused now, recorded as this run's failure.
            store.require_advance(site_id, run.success_state)
    except BaseException as exc:
        message = redact_url(f"{type(exc).__name__}: {exc}".splitlines()[0])[:500]
        store.finish_run(run_id, "failed", run.figures, error=message)
        if ledger is not None:
            try:
                ledger.append(site_id, stage, "failed", {"error": message}, run_id=run_id)
            except Exception as ledger_error:  # the stage's own error is the one to report
                exc.add_note(f"the audit ledger could not record this failure: {ledger_error}")
        raise
    store.finish_run(run_id, "succeeded", run.figures)
    if run.success_state is not None:  # a re-run of an earlier stage (assess on a loaded site) moves nothing
        store.advance_state(site_id, run.success_state, run_id)
    if ledger is not None:
        data: dict[str, Any] = {"figures": run.figures}
        if run.success_state is not None:
            data["state"] = run.success_state.value
        ledger.append(site_id, stage, "succeeded", data, run_id=run_id)


def close_abandoned_runs(
    store: ControlStore,
    ledger: EventLedger | Callable[[str], EventLedger | None] | None,
    site_id: str | None = None,
) -> list[RunRecord]:
    """Mark the site's (or every site's) runs whose process is gone `abandoned`; a ledger event each.

    `ledger` is an audit.ledger.Ledger of `site_id`, a callable site_id -> Ledger (every site),
    or None (no events: tests of plain logic, an inventory without a signing key).
    """
    closed = store.close_abandoned_runs(site_id)
    for record in closed:
        site_ledger = ledger(record.site_id) if callable(ledger) else ledger
        if site_ledger is not None:
            assert record.abandoned_at is not None  # close_abandoned_runs stamps each run it closes
            site_ledger.append(
                record.site_id,
                record.stage,
                "abandoned",
                {
                    "noticed_at": record.abandoned_at.isoformat(sep=" ", timespec="seconds"),
                    "host": record.host,
                    "pid": record.pid,
                },
                run_id=record.run_id,
            )
    return closed
