"""Fleet status: every site of an inventory at a glance, for agency IT.

One row per site: where it is in its life, its last run and how that ended, its
figures (rows backed up, loaded, rejected, flagged), the dossiers still in
flight and the drain forecast (the latest reconciliation's own figures), what
comes next and who does it (IT, custodian, approver, operator), and what
blocks it, with the error's class. Totals on top; the sites that need
attention first.

It reads the control store only, with one query per table whatever the number
of sites: the latest run of each site, stage and outcome comes from one
windowed query. So hundreds of sites show in a moment, and the status can be
rebuilt on any machine with the inventory and the control store.

Example::

    status = read_fleet_status(app.control_store, app.inventory)
    status.totals["attention"]["blocked"], status.sites[0].next.who
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ts24_migrate.core.config import Inventory
from ts24_migrate.core.control_store import ControlStore, RunRecord, SiteState, runs, site_state, table_figures
from ts24_migrate.core.control_store import _run_record as run_record  # one reading of a runs row, with every column
from ts24_migrate.core.run_liveness import process_gone
from ts24_migrate.runs.site_life import (
    IDENTITY_PLACEHOLDER,
    VERIFY_STAGE,
    BackupFacts,
    NextStep,
    SiteFacts,
    next_step,
    verification_of,
)

LIFE = list(SiteState)
CHECK = "check"  # the scheduled check's stage (steps.check): backup chain and audit ledger
# The stages of a migration in order: a failure is behind the site once a later one succeeded.
PIPELINE = ("assess", "backup", "verify-backup", "load", "validate", "reconcile")
PROBLEM_OUTCOMES = ("failed", "abandoned")  # abandoned: a killed run, closed by a later command
_ERROR_CLASS = re.compile(r"^([A-Z][A-Za-z0-9_]*):")


class Attention(int, enum.Enum):
    """How urgently a site needs someone, most urgent first (the sort order)."""

    BLOCKED = 0  # the scheduled check found its backup chain or audit ledger damaged
    FAILED = 1  # a stage's latest run failed or was abandoned
    WAITING = 2  # a custodian, approver or operator has to act
    TO_DO = 3  # IT runs the next stage
    RUNNING = 4  # a stage is running
    DRAINING = 5  # reconciled daily until its in-flight dossiers drain
    DONE = 6

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


@dataclass(frozen=True)
class RunSummary:
    stage: str
    outcome: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    run_id: str
    error_class: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Blocker:
    stage: str
    error_class: str
    message: str
    since: dt.datetime
    run_id: str


@dataclass(frozen=True)
class NextAction:
    who: str  # IT, custodian, approver, operator; "" when nothing is left to do
    action: str
    command: str | None = None  # a ts24-migrate command line, when one does it


@dataclass(frozen=True)
class SiteStatus:
    site_id: str
    office: str
    name: str | None
    legacy_server: str
    state: str
    step: int  # the state's place in the site's life, from 1
    last_run: RunSummary | None
    running: str | None  # the stage running now, if any
    backed_up: int | None
    loaded: int | None
    rejected: int | None
    flagged: int | None
    in_flight: int | None
    in_flight_as_of: str | None  # the legacy server's clock (reconcile) or the assessment's time
    forecast_drain_date: str | None
    check: RunSummary | None
    next: NextAction
    blockers: tuple[Blocker, ...]
    attention: Attention
    since: dt.datetime | None  # how long the site has been as it is: the sort's second key

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["attention"] = self.attention.label
        data["steps"] = len(LIFE)
        return data


@dataclass
class FleetStatus:
    generated_at: dt.datetime
    sites: list[SiteStatus]
    totals: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(
            json.dumps(
                {"generated_at": self.generated_at, "totals": self.totals, "sites": [s.to_dict() for s in self.sites]},
                default=_json_value,
            )
        )


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


# -- reading the control store: one query per table -------------------------------------------


def error_class(error: str | None, outcome: str = "failed") -> str | None:
    """The class of a recorded error: stage_run records `ClassName: message`."""
    if outcome == "abandoned":
        return "abandoned"
    if not error:
        return None
    found = _ERROR_CLASS.match(error)
    return found.group(1) if found else "Error"


def _summary(run: RunRecord) -> RunSummary:
    return RunSummary(
        run.stage,
        run.outcome,
        run.started_at,
        run.finished_at,
        run.run_id,
        error_class(run.error, run.outcome),
        run.error,
    )


@dataclass
class _SiteRuns:
    """What fleet status needs of one site's runs: the latest of each stage and outcome, and every
    verify-backup run (how far the backup was verified is decided over all of them)."""

    latest: dict[tuple[str, str], RunRecord] = field(default_factory=dict)
    verifications: list[RunRecord] = field(default_factory=list)


def _site_runs(store: ControlStore, site_ids: list[str], now: dt.datetime) -> dict[str, _SiteRuns]:
    """site -> its runs, in one query. A `running` run whose process is gone (run_liveness) is
    shown as abandoned, as the next command on the site will record it; nothing is written here."""
    rank = (
        sa.func.row_number()
        .over(
            partition_by=(runs.c.site_id, runs.c.stage, runs.c.outcome),
            order_by=(runs.c.started_at.desc(), runs.c.run_id.desc()),
        )
        .label("rank")
    )
    ranked = sa.select(runs, rank).where(runs.c.site_id.in_(site_ids)).subquery()
    query = (
        sa.select(ranked)
        .where(sa.or_(ranked.c.rank == 1, ranked.c.stage == VERIFY_STAGE))
        .order_by(ranked.c.started_at, ranked.c.run_id)
    )
    found: dict[str, _SiteRuns] = {}
    with store.engine.connect() as c:
        for row in c.execute(query):
            run = run_record(row)
            if run.outcome == "running" and process_gone(
                row.host, row.pid, row.start_token, heartbeat_at=row.heartbeat_at, started_at=row.started_at, now=now
            ):
                run = dataclasses.replace(run, outcome="abandoned", error="abandoned: its process is gone")
            site = found.setdefault(run.site_id, _SiteRuns())
            if run.stage == VERIFY_STAGE:
                site.verifications.append(run)
            if row.rank == 1:
                site.latest[(run.stage, run.outcome)] = run
    return found


def site_states(store: ControlStore, site_ids: list[str]) -> dict[str, tuple[SiteState, dt.datetime]]:
    """site -> (state, when it was set), for the sites that have one (one query)."""
    with store.engine.connect() as c:
        rows = c.execute(
            sa.select(site_state.c.site_id, site_state.c.state, site_state.c.updated_at).where(
                site_state.c.site_id.in_(site_ids)
            )
        ).all()
    return {r.site_id: (SiteState(r.state), r.updated_at) for r in rows}


def _flags_by_run(store: ControlStore, run_ids: list[str]) -> dict[str, int | None]:
    """run -> rows flagged by the load, summed over its tables and flag codes (`flags_by_code` of
    each table's figures); None for a run whose figures have none (loads before flags were counted)."""
    if not run_ids:
        return {}
    flagged: dict[str, int | None] = {run_id: None for run_id in run_ids}
    with store.engine.connect() as c:
        for r in c.execute(
            sa.select(table_figures.c.run_id, table_figures.c.figures).where(table_figures.c.run_id.in_(run_ids))
        ):
            by_code = json.loads(r.figures).get("flags_by_code")
            if isinstance(by_code, dict):
                flagged[r.run_id] = (flagged[r.run_id] or 0) + sum(int(n) for n in by_code.values())
    return flagged


def read_fleet_status(store: ControlStore, inventory: Inventory, *, now: dt.datetime | None = None) -> FleetStatus:
    """Every site of `inventory` as the control store has it (three queries, whatever the fleet's size)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    site_ids = [s.id for s in inventory.sites]
    states = site_states(store, site_ids)
    found = _site_runs(store, site_ids, now)
    load_runs = [
        r.run_id
        for site in found.values()
        for (stage, outcome), r in site.latest.items()
        if stage == "load" and outcome == "succeeded"
    ]
    flags = _flags_by_run(store, load_runs)
    sites = []
    for site in inventory.sites:
        state, updated_at = states.get(site.id, (SiteState.NEW, None))
        sites.append(_site_status(site, state, updated_at, found.get(site.id, _SiteRuns()), flags, inventory))
    sites.sort(key=lambda s: (s.attention, s.since is None, s.since or dt.datetime.min, s.site_id))
    return FleetStatus(now, sites, _totals(sites))


# -- one site ---------------------------------------------------------------------------------


def _latest_of_stage(latest: dict[tuple[str, str], RunRecord], stage: str) -> RunRecord | None:
    found = [r for (s, _), r in latest.items() if s == stage]
    return max(found, key=lambda r: (r.started_at, r.run_id)) if found else None


def _superseded(run: RunRecord, latest: dict[tuple[str, str], RunRecord]) -> bool:
    """A failure is behind the site when a later stage of the migration succeeded after it."""
    if run.stage not in PIPELINE:
        return False
    later = PIPELINE[PIPELINE.index(run.stage) + 1 :]
    return any(r.started_at > run.started_at for (s, o), r in latest.items() if s in later and o == "succeeded")


def _blockers(latest: dict[tuple[str, str], RunRecord]) -> list[Blocker]:
    found = []
    for stage in sorted({s for s, _ in latest}):
        run = _latest_of_stage(latest, stage)
        if run is None or run.outcome not in PROBLEM_OUTCOMES or _superseded(run, latest):
            continue
        message = _ERROR_CLASS.sub("", (run.error or f"{stage} {run.outcome}").splitlines()[0]).strip()[:300]
        found.append(
            Blocker(
                stage,
                error_class(run.error, run.outcome) or "Error",
                message,
                run.finished_at or run.started_at,
                run.run_id,
            )
        )
    return sorted(found, key=lambda b: (b.stage != CHECK, b.since))


def _facts(site_id: str, state: SiteState, found: _SiteRuns, inventory: Inventory) -> SiteFacts:
    """steps.site_life's facts, from the runs already read (the control store only: a backup the
    latest successful backup run made is taken as complete on disk)."""
    latest = found.latest
    backup_run = latest.get(("backup", "succeeded"))
    backup = None
    if backup_run is not None and backup_run.figures.get("backup_id"):
        backup_id = backup_run.figures["backup_id"]
        verification, verified_by = verification_of(found.verifications, backup_id)
        backup = BackupFacts(
            backup_id, Path(backup_run.figures.get("backup_dir") or backup_id), backup_run, verification, verified_by
        )
    verdicts = [
        r
        for r in (latest.get(("validate", "succeeded")), latest.get(("validate", "failed")))
        if r is not None and "verdict" in r.figures
    ]
    return SiteFacts(
        site_id,
        state,
        inventory.source_path or Path("sites.yaml"),
        assessed=("assess", "succeeded") in latest,
        backup=backup,
        load=latest.get(("load", "succeeded")),
        validation=max(verdicts, key=lambda r: r.started_at) if verdicts else None,
        reconcile=latest.get(("reconcile", "succeeded")),
    )


def _site_status(
    site,
    state: SiteState,
    updated_at: dt.datetime | None,
    found: _SiteRuns,
    flags: dict[str, int | None],
    inventory: Inventory,
) -> SiteStatus:
    latest = found.latest
    every = list(latest.values())
    last = max(every, key=lambda r: (r.started_at, r.run_id)) if every else None
    running_runs = [
        r
        for r in (_latest_of_stage(latest, s) for s in {s for s, _ in latest})
        if r is not None and r.outcome == "running"
    ]
    running = max(running_runs, key=lambda r: r.started_at) if running_runs else None
    backup, load = latest.get(("backup", "succeeded")), latest.get(("load", "succeeded"))
    reconciled, assessed = latest.get(("reconcile", "succeeded")), latest.get(("assess", "succeeded"))
    if reconciled is not None and reconciled.figures.get("in_flight") is not None:
        in_flight, as_of = reconciled.figures.get("in_flight"), reconciled.figures.get("as_of")
    elif assessed is not None:
        in_flight = assessed.figures.get("in_flight_dossiers")
        as_of = _json_value(assessed.finished_at) if assessed.finished_at else None
    else:
        in_flight, as_of = None, None
    check = _latest_of_stage(latest, CHECK)
    blockers = _blockers(latest)
    next_action, attention = _next_action(
        site.id, state, blockers, running, _facts(site.id, state, found, inventory), latest
    )
    since = (
        blockers[0].since
        if blockers
        else running.started_at
        if running
        else (last.finished_at or last.started_at)
        if last
        else updated_at
    )
    return SiteStatus(
        site_id=site.id,
        office=site.office,
        name=site.name,
        legacy_server=site.server,
        state=state.value,
        step=LIFE.index(state) + 1,
        last_run=_summary(last) if last else None,
        running=running.stage if running else None,
        backed_up=_int(backup.figures.get("rows")) if backup else None,
        loaded=_int(load.figures.get("loaded")) if load else None,
        rejected=_int(load.figures.get("rejected")) if load else None,
        flagged=flags.get(load.run_id) if load else None,
        in_flight=_int(in_flight),
        in_flight_as_of=as_of,
        forecast_drain_date=reconciled.figures.get("forecast_drain_date") if reconciled else None,
        check=_summary(check) if check else None,
        next=next_action,
        blockers=tuple(blockers),
        attention=attention,
        since=since,
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _command(facts: SiteFacts, *args: str) -> str:
    return NextStep("", args, "").command(facts.inventory)


def _after_drained(facts: SiteFacts, latest: dict[tuple[str, str], RunRecord]) -> tuple[NextAction, Attention]:
    """The purge's part of the site's life (README: Retiring a TS24 server)."""
    site, state = facts.site_id, facts.state
    if state is SiteState.DRAINED:
        return NextAction(
            "custodian",
            "the site is drained: stop writes, take the final increment and decrypt-verify the chain for the purge",
            _command(facts, "purge", "prepare", site, "--identity", IDENTITY_PLACEHOLDER),
        ), Attention.WAITING
    if state is SiteState.FINAL_BACKUP_VERIFIED:
        if ("purge-plan", "succeeded") not in latest:
            return NextAction(
                "operator", "write the purge plan (a dry run)", _command(facts, "purge", "plan", site, "--key", "KEY")
            ), Attention.WAITING
        return NextAction(
            "approver",
            "approve the purge plan (an approver other than its author); then the operator executes it",
            _command(facts, "purge", "approve", "PLAN"),
        ), Attention.WAITING
    if state in (SiteState.PURGE_APPROVED, SiteState.PURGED):
        return NextAction(
            "operator",
            "finish the approved purge: the same command resumes it",
            _command(facts, "purge", "execute", site, "--plan", "PLAN", "--approval", "APPROVAL"),
        ), Attention.WAITING
    return NextAction(
        "operator",
        "certified: record the media sanitization and the hand-over, if not done",
        _command(facts, "purge", "attest-media", site),
    ), Attention.DONE


def _life_step(facts: SiteFacts, latest: dict[tuple[str, str], RunRecord]) -> tuple[NextAction, Attention]:
    """What the site's life asks next: steps.site_life.next_step up to the drain, the purge after."""
    if LIFE.index(facts.state) >= LIFE.index(SiteState.DRAINED):
        return _after_drained(facts, latest)
    step = next_step(facts)
    action = NextAction(step.who, step.why, step.command(facts.inventory) or None)
    if step.who != "IT":
        return action, Attention.WAITING
    if step.args[:2] == ("reconcile", "run") and facts.state is SiteState.RECONCILING:
        return action, Attention.DRAINING
    return action, Attention.TO_DO


_BY_CLASS = {
    "abandoned": "its {stage} run was killed: run it again, it resumes",
    "UnreachableError": "a database or folder was unreachable in {stage}: check the server, the network and the "
    "driver, then run again (it resumes)",
    "ConfigError": "{stage} stopped on the inventory or a secret: fix what the error names, then run again",
    "UsageError": "{stage} stopped on the inventory or a secret: fix what the error names, then run again",
    "GateRefused": "a safety gate refused {stage}: do what the error says (a wrong legacy URL, or `assess "
    "--server-moved` if the database really moved)",
    "StageRefused": "{stage} was refused: the step before it is missing",
    "VerificationError": "{stage} found a problem: read its report or error",
}


def _next_action(
    site_id: str,
    state: SiteState,
    blockers: list[Blocker],
    running: RunRecord | None,
    facts: SiteFacts,
    latest: dict[tuple[str, str], RunRecord],
) -> tuple[NextAction, Attention]:
    if blockers and blockers[0].stage == CHECK:
        return NextAction(
            "IT",
            "the daily check found the backup chain or the audit ledger damaged: find out "
            "what changed them (never overwrite a backup part), then check again",
            _command(facts, "fleet", "check", site_id),
        ), Attention.BLOCKED
    if running is not None:
        return NextAction(
            "IT", f"{running.stage} is running (since {running.started_at:%Y-%m-%d %H:%M} UTC): wait for it"
        ), Attention.RUNNING
    step, attention = _life_step(facts, latest)
    if not blockers:
        return step, attention
    blocker = blockers[0]
    what = _BY_CLASS.get(
        blocker.error_class, "{stage} stopped on an internal error (a bug): rerun it with --debug and report it"
    ).format(stage=blocker.stage)
    if step.who != "IT":  # who acts next is the life's answer: a failed validation may wait for a custodian
        return step, Attention.WAITING
    return NextAction(step.who, f"{what} (next: {step.action})", step.command), Attention.FAILED


# -- totals -----------------------------------------------------------------------------------


def _sum(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _totals(sites: list[SiteStatus]) -> dict[str, Any]:
    by_state = {state.value: sum(s.state == state.value for s in sites) for state in LIFE}
    attention = {a.label: sum(s.attention is a for s in sites) for a in Attention}
    waiting_on: dict[str, int] = {}
    for s in sites:
        if s.next.who and s.attention not in (Attention.RUNNING, Attention.DRAINING, Attention.DONE):
            waiting_on[s.next.who] = waiting_on.get(s.next.who, 0) + 1
    forecasts = [
        s.forecast_drain_date
        for s in sites
        if s.forecast_drain_date and LIFE.index(SiteState(s.state)) < LIFE.index(SiteState.DRAINED)
    ]
    return {
        "sites": len(sites),
        "by_state": {state: n for state, n in by_state.items() if n},
        "attention": attention,
        "waiting_on": dict(sorted(waiting_on.items())),
        "validated_or_later": sum(s.step >= LIFE.index(SiteState.VALIDATED) + 1 for s in sites),
        "drained_or_later": sum(s.step >= LIFE.index(SiteState.DRAINED) + 1 for s in sites),
        "checks": {
            "passed": sum(bool(s.check and s.check.outcome == "succeeded") for s in sites),
            "failed": sum(bool(s.check and s.check.outcome in PROBLEM_OUTCOMES) for s in sites),
            "never": sum(s.check is None for s in sites),
        },
        "rows": {
            "backed_up": _sum(s.backed_up for s in sites),
            "loaded": _sum(s.loaded for s in sites),
            "rejected": _sum(s.rejected for s in sites),
            "flagged": _sum(s.flagged for s in sites),
        },
        "in_flight": _sum(s.in_flight for s in sites),
        "last_forecast_drain_date": max(forecasts) if forecasts else None,
    }
