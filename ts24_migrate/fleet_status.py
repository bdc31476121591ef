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

import datetime as dt
import enum
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import sqlalchemy as sa

from .config import Inventory
from .control_store import ControlStore, SiteState, runs, site_state, table_figures

LIFE = list(SiteState)
CHECK = "check"  # the scheduled check's stage (steps.check): backup chain and audit ledger
# The stages of a migration in order: a failure is behind the site once a later one succeeded.
PIPELINE = ("assess", "backup", "verify-backup", "load", "validate", "reconcile")
PROBLEM_OUTCOMES = ("failed", "abandoned")  # abandoned: a killed run, closed by a later command
_ERROR_CLASS = re.compile(r"^([A-Z][A-Za-z0-9_]*):")
_BACKUP_NOT_VERIFIED = "backup not verified"  # the validation's reason (steps.validate)


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
        return json.loads(json.dumps({"generated_at": self.generated_at, "totals": self.totals,
                                      "sites": [s.to_dict() for s in self.sites]}, default=_json_value))


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


# -- reading the control store: one query per table -------------------------------------------

@dataclass(frozen=True)
class _Run:
    run_id: str
    stage: str
    outcome: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    figures: dict[str, Any]
    error: str | None

    def summary(self) -> RunSummary:
        return RunSummary(self.stage, self.outcome, self.started_at, self.finished_at, self.run_id,
                          error_class(self.error, self.outcome), self.error)


def error_class(error: str | None, outcome: str = "failed") -> str | None:
    """The class of a recorded error: stage_run records `ClassName: message`."""
    if outcome == "abandoned":
        return "abandoned"
    if not error:
        return None
    found = _ERROR_CLASS.match(error)
    return found.group(1) if found else "Error"


def _latest_runs(store: ControlStore, site_ids: list[str]) -> dict[str, dict[tuple[str, str], _Run]]:
    """site -> (stage, outcome) -> its latest run, in one query."""
    rank = sa.func.row_number().over(partition_by=(runs.c.site_id, runs.c.stage, runs.c.outcome),
                                     order_by=(runs.c.started_at.desc(), runs.c.run_id.desc())).label("rank")
    ranked = (sa.select(runs.c.run_id, runs.c.site_id, runs.c.stage, runs.c.outcome, runs.c.started_at,
                        runs.c.finished_at, runs.c.figures, runs.c.error, rank)
              .where(runs.c.site_id.in_(site_ids)).subquery())
    found: dict[str, dict[tuple[str, str], _Run]] = {}
    with store.engine.connect() as c:
        for r in c.execute(sa.select(ranked).where(ranked.c.rank == 1)):
            found.setdefault(r.site_id, {})[(r.stage, r.outcome)] = _Run(
                r.run_id, r.stage, r.outcome, r.started_at, r.finished_at,
                json.loads(r.figures) if r.figures else {}, r.error)
    return found


def site_states(store: ControlStore, site_ids: list[str]) -> dict[str, tuple[SiteState, dt.datetime]]:
    """site -> (state, when it was set), for the sites that have one (one query)."""
    with store.engine.connect() as c:
        rows = c.execute(sa.select(site_state.c.site_id, site_state.c.state, site_state.c.updated_at)
                         .where(site_state.c.site_id.in_(site_ids))).all()
    return {r.site_id: (SiteState(r.state), r.updated_at) for r in rows}


def _flags_by_run(store: ControlStore, run_ids: list[str]) -> dict[str, int | None]:
    """run -> rows flagged by the load, summed over its tables and flag codes (`flags_by_code` of
    each table's figures); None for a run whose figures have none (loads before flags were counted)."""
    if not run_ids:
        return {}
    flagged: dict[str, int | None] = {run_id: None for run_id in run_ids}
    with store.engine.connect() as c:
        for r in c.execute(sa.select(table_figures.c.run_id, table_figures.c.figures)
                           .where(table_figures.c.run_id.in_(run_ids))):
            by_code = json.loads(r.figures).get("flags_by_code")
            if isinstance(by_code, dict):
                flagged[r.run_id] = (flagged[r.run_id] or 0) + sum(int(n) for n in by_code.values())
    return flagged


def read_fleet_status(store: ControlStore, inventory: Inventory, *, now: dt.datetime | None = None) -> FleetStatus:
    """Every site of `inventory` as the control store has it (three queries, whatever the fleet's size)."""
    site_ids = [s.id for s in inventory.sites]
    states = site_states(store, site_ids)
    latest = _latest_runs(store, site_ids)
    load_runs = [r.run_id for site in latest.values() for (stage, outcome), r in site.items()
                 if stage == "load" and outcome == "succeeded"]
    flags = _flags_by_run(store, load_runs)
    sites = []
    for site in inventory.sites:
        state, updated_at = states.get(site.id, (SiteState.NEW, None))
        sites.append(_site_status(site, state, updated_at, latest.get(site.id, {}), flags))
    sites.sort(key=lambda s: (s.attention, s.since is None, s.since or dt.datetime.min, s.site_id))
    generated = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return FleetStatus(generated, sites, _totals(sites))


# -- one site ---------------------------------------------------------------------------------

def _latest_of_stage(latest: dict[tuple[str, str], _Run], stage: str) -> _Run | None:
    found = [r for (s, _), r in latest.items() if s == stage]
    return max(found, key=lambda r: (r.started_at, r.run_id)) if found else None


def _succeeded(latest: dict[tuple[str, str], _Run], stage: str) -> _Run | None:
    return latest.get((stage, "succeeded"))


def _superseded(run: _Run, latest: dict[tuple[str, str], _Run]) -> bool:
    """A failure is behind the site when a later stage of the migration succeeded after it."""
    if run.stage not in PIPELINE:
        return False
    later = PIPELINE[PIPELINE.index(run.stage) + 1:]
    return any(r.started_at > run.started_at for (s, o), r in latest.items() if s in later and o == "succeeded")


def _blockers(latest: dict[tuple[str, str], _Run]) -> list[Blocker]:
    found = []
    for stage in sorted({s for s, _ in latest}):
        run = _latest_of_stage(latest, stage)
        if run is None or run.outcome not in PROBLEM_OUTCOMES or _superseded(run, latest):
            continue
        message = _ERROR_CLASS.sub("", (run.error or f"{stage} {run.outcome}").splitlines()[0]).strip()[:300]
        found.append(Blocker(stage, error_class(run.error, run.outcome) or "Error", message,
                             run.finished_at or run.started_at, run.run_id))
    return sorted(found, key=lambda b: (b.stage != CHECK, b.since))


def _site_status(site, state: SiteState, updated_at: dt.datetime | None,
                 latest: dict[tuple[str, str], _Run], flags: dict[str, int | None]) -> SiteStatus:
    every = list(latest.values())
    last = max(every, key=lambda r: (r.started_at, r.run_id)) if every else None
    running_runs = [r for r in (_latest_of_stage(latest, s) for s in {s for s, _ in latest})
                    if r is not None and r.outcome == "running"]
    running = max(running_runs, key=lambda r: r.started_at) if running_runs else None
    backup, load = _succeeded(latest, "backup"), _succeeded(latest, "load")
    reconciled, assessed = _succeeded(latest, "reconcile"), _succeeded(latest, "assess")
    if reconciled is not None and reconciled.figures.get("in_flight") is not None:
        in_flight, as_of = reconciled.figures.get("in_flight"), reconciled.figures.get("as_of")
    elif assessed is not None:
        in_flight = assessed.figures.get("in_flight_dossiers")
        as_of = _json_value(assessed.finished_at) if assessed.finished_at else None
    else:
        in_flight, as_of = None, None
    check = _latest_of_stage(latest, CHECK)
    blockers = _blockers(latest)
    next_action, attention = _next_action(site.id, state, blockers, running, _latest_of_stage(latest, "validate"))
    since = (blockers[0].since if blockers else running.started_at if running
             else (last.finished_at or last.started_at) if last else updated_at)
    return SiteStatus(
        site_id=site.id, office=site.office, name=site.name, legacy_server=site.server, state=state.value,
        step=LIFE.index(state) + 1, last_run=last.summary() if last else None,
        running=running.stage if running else None,
        backed_up=_int(backup.figures.get("rows")) if backup else None,
        loaded=_int(load.figures.get("loaded")) if load else None,
        rejected=_int(load.figures.get("rejected")) if load else None,
        flagged=flags.get(load.run_id) if load else None,
        in_flight=_int(in_flight), in_flight_as_of=as_of,
        forecast_drain_date=reconciled.figures.get("forecast_drain_date") if reconciled else None,
        check=check.summary() if check else None, next=next_action, blockers=tuple(blockers),
        attention=attention, since=since)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _command(*args: str) -> str:
    return " ".join(["ts24-migrate", *args])


def _for_blocker(site_id: str, blocker: Blocker, validate: _Run | None) -> tuple[NextAction, Attention]:
    """What to do about the first blocker, by the error's class (ts24_migrate.errors)."""
    kind = blocker.error_class
    if blocker.stage == CHECK:
        return NextAction("IT", "the daily check found the backup chain or the audit ledger damaged: find out "
                                "what changed them (never overwrite a backup part), then check again",
                          _command("fleet", "check", site_id)), Attention.BLOCKED
    if blocker.stage == "validate" and validate is not None and any(
            str(reason).startswith(_BACKUP_NOT_VERIFIED) for reason in validate.figures.get("reasons") or []):
        return NextAction("custodian", "decrypt-verify the backup with a custodian key; then IT validates again",
                          _command("backup", "verify", site_id, "--identity", "KEY")), Attention.WAITING
    if kind == "abandoned":
        return NextAction("IT", f"the {blocker.stage} run was killed: run it again, it resumes",
                          _command("migrate", site_id)), Attention.FAILED
    if kind == "UnreachableError":
        return NextAction("IT", "a database or folder was unreachable: check the server, the network and the "
                                "driver, then run again (it resumes)", _command("migrate", site_id)), Attention.FAILED
    if kind in ("ConfigError", "UsageError"):
        return NextAction("IT", "fix the inventory or the secret the error names, then run again",
                          None), Attention.FAILED
    if kind in ("GateRefused", "StageRefused", "PartExists"):
        return NextAction("IT", "a safety gate refused: do what the error says (e.g. the legacy URL, or "
                                f"`assess {site_id} --server-moved` if the database really moved)",
                          None), Attention.FAILED
    if kind == "VerificationError":
        if blocker.stage == "validate":
            return NextAction("IT", "the validation failed: read its report, fix what it names, validate again",
                              _command("report", site_id)), Attention.FAILED
        return NextAction("IT", f"{blocker.stage} found a problem: read the error; a damaged backup is made "
                                "again", None), Attention.FAILED
    return NextAction("IT", "an internal error (a bug): rerun with --debug and report it",
                      None), Attention.FAILED


def _next_action(site_id: str, state: SiteState, blockers: list[Blocker], running: _Run | None,
                 validate: _Run | None) -> tuple[NextAction, Attention]:
    if blockers:
        return _for_blocker(site_id, blockers[0], validate)
    if running is not None:
        return NextAction("IT", f"{running.stage} is running (since "
                                f"{running.started_at:%Y-%m-%d %H:%M} UTC): wait for it"), Attention.RUNNING
    if state in (SiteState.NEW, SiteState.ASSESSED, SiteState.EXTRACTED, SiteState.BACKED_UP,
                 SiteState.BACKUP_VERIFIED):
        what = "migrate it" if state is SiteState.NEW else "carry on with its migration (it resumes)"
        return NextAction("IT", f"{what}: assess, back up, verify, load, validate (or migrate-fleet)",
                          _command("migrate", site_id)), Attention.TO_DO
    if state is SiteState.LOADED:
        return NextAction("IT", "validate it", _command("validate", site_id)), Attention.TO_DO
    if state is SiteState.VALIDATED:
        return NextAction("IT", "start its reconciliation (the reconcile-sites deployment runs it daily)",
                          _command("reconcile", "run", site_id)), Attention.TO_DO
    if state is SiteState.RECONCILING:
        return NextAction("IT", "nothing until it drains: reconcile-sites runs daily"), Attention.DRAINING
    if state is SiteState.DRAINED:
        return NextAction("operator", "take the final backup and prepare the purge plan"), Attention.WAITING
    if state is SiteState.FINAL_BACKUP_VERIFIED:
        return NextAction("approver", "review and approve the purge plan (not its author)"), Attention.WAITING
    if state is SiteState.PURGE_APPROVED:
        return NextAction("operator", "execute the approved purge"), Attention.WAITING
    if state is SiteState.PURGED:
        return NextAction("operator", "issue the certificate and hand the server back"), Attention.WAITING
    return NextAction("", "done: certified"), Attention.DONE


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
    forecasts = [s.forecast_drain_date for s in sites
                 if s.forecast_drain_date and LIFE.index(SiteState(s.state)) < LIFE.index(SiteState.DRAINED)]
    return {
        "sites": len(sites),
        "by_state": {state: n for state, n in by_state.items() if n},
        "attention": attention,
        "waiting_on": dict(sorted(waiting_on.items())),
        "validated_or_later": sum(s.step >= LIFE.index(SiteState.VALIDATED) + 1 for s in sites),
        "drained_or_later": sum(s.step >= LIFE.index(SiteState.DRAINED) + 1 for s in sites),
        "checks": {"passed": sum(bool(s.check and s.check.outcome == "succeeded") for s in sites),
                   "failed": sum(bool(s.check and s.check.outcome in PROBLEM_OUTCOMES) for s in sites),
                   "never": sum(s.check is None for s in sites)},
        "rows": {"backed_up": _sum(s.backed_up for s in sites), "loaded": _sum(s.loaded for s in sites),
                 "rejected": _sum(s.rejected for s in sites), "flagged": _sum(s.flagged for s in sites)},
        "in_flight": _sum(s.in_flight for s in sites),
        "last_forecast_drain_date": max(forecasts) if forecasts else None,
    }
