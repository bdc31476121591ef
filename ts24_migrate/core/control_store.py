"""The control store: each site's state and the history of every stage run.

SQLite by default, PostgreSQL when configured; created on first use (and
given the columns a later release added). Figures are stored as JSON exactly
as the stage computed them, so reports show the same numbers the invariants
check. A run records where its process runs; one killed outright is marked
`abandoned` later by `close_abandoned_runs` (rule in run_liveness).

Example::

    store = ControlStore(engine)          # creates its tables if missing
    run = store.start_run("hn-01", "assess")
    store.record_table("hn-01", run, "HO_SO", {"rows": 1200})
    store.finish_run(run, "succeeded", {"tables": 14})
    store.set_state("hn-01", SiteState.ASSESSED, run)   # SiteLifeRefused for a move its life lacks
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .results import StageResult, jsonable
from .run_liveness import ProcessIdentity, process_gone
from .site_states import SiteLifeRefused as SiteLifeRefused  # re-exported: the store raises it
from .site_states import SiteState as SiteState  # re-exported: where the store's users have always found it
from .site_states import allowed, is_later

metadata = sa.MetaData()

site_state = sa.Table(
    "ctl_site_state",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("last_run_id", sa.String(36)),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

site_transitions = sa.Table(
    "ctl_site_transitions",
    metadata,
    sa.Column("transition_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(64), nullable=False, index=True),
    sa.Column("from_state", sa.String(32)),
    sa.Column("to_state", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("at", sa.DateTime, nullable=False),
)

runs = sa.Table(
    "ctl_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("site_id", sa.String(64), nullable=False, index=True),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # running | succeeded | failed | abandoned
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("figures", sa.Text),  # JSON
    sa.Column("error", sa.Text),
    sa.Column("parent_run_id", sa.String(36)),  # e.g. the migrate-site run a stage ran under
    # Where the run's process is, so that a killed one can be told from a running one
    # (ts24_migrate.core.run_liveness); abandoned_at: when a later command noticed it was gone.
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("start_token", sa.String(64)),
    sa.Column("heartbeat_at", sa.DateTime),
    sa.Column("abandoned_at", sa.DateTime),
)

# Columns added to ctl_runs after its first release: a control store made before gets them on open.
_ADDED_RUN_COLUMNS = ("host", "pid", "start_token", "heartbeat_at", "abandoned_at")

table_figures = sa.Table(
    "ctl_table_figures",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("table_name", sa.String(128), primary_key=True),
    sa.Column("site_id", sa.String(64), nullable=False, index=True),
    sa.Column("figures", sa.Text, nullable=False),  # JSON
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


Figures = Mapping[str, Any] | StageResult  # a stage's typed figures are stored as the plain data they dump to
Result = TypeVar("Result", bound=StageResult)


def _figures_json(figures: Figures | None) -> str:
    return json.dumps(
        jsonable(dict(figures) if isinstance(figures, Mapping) else figures) or {}, default=str, sort_keys=True
    )


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    site_id: str
    stage: str
    outcome: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    figures: dict[str, Any]
    error: str | None
    parent_run_id: str | None
    host: str | None = None
    pid: int | None = None
    abandoned_at: dt.datetime | None = None

    def figures_as(self, result_type: type[Result]) -> Result:
        """The run's figures as the typed result its stage recorded them from (pydantic validates them)."""
        return result_type.model_validate(self.figures)


def _run_record(row: sa.Row[*tuple[Any, ...]]) -> RunRecord:
    return RunRecord(
        row.run_id,
        row.site_id,
        row.stage,
        row.outcome,
        row.started_at,
        row.finished_at,
        json.loads(row.figures) if row.figures else {},
        row.error,
        row.parent_run_id,
        row.host,
        row.pid,
        row.abandoned_at,
    )


def _add_missing_run_columns(engine: Engine) -> None:
    """ALTER TABLE ctl_runs ADD COLUMN ... for each column a control store of an earlier release lacks."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(runs.name)}
    missing = [name for name in _ADDED_RUN_COLUMNS if name not in present]
    if not missing:
        return
    preparer = engine.dialect.identifier_preparer
    for name in missing:
        column = sa.schema.CreateColumn(runs.c[name]).compile(dialect=engine.dialect)
        try:
            with engine.begin() as c:
                c.execute(sa.text(f"ALTER TABLE {preparer.format_table(runs)} ADD COLUMN {column}"))
        except sa.exc.DBAPIError:  # another process (a fleet's other worker) added it first
            if name not in {c["name"] for c in sa.inspect(engine).get_columns(runs.name)}:
                raise


class ControlStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine, checkfirst=True)
        _add_missing_run_columns(engine)

    # -- runs -------------------------------------------------------------
    def start_run(
        self, site_id: str, stage: str, *, parent_run_id: str | None = None, run_id: str | None = None
    ) -> str:
        run_id = run_id or str(uuid.uuid4())
        me, now = ProcessIdentity.current(), _now()
        with self.engine.begin() as c:
            c.execute(
                runs.insert().values(
                    run_id=run_id,
                    site_id=site_id,
                    stage=stage,
                    outcome="running",
                    started_at=now,
                    parent_run_id=parent_run_id,
                    host=me.host,
                    pid=me.pid,
                    start_token=me.start_token,
                    heartbeat_at=now,
                )
            )
        return run_id

    def heartbeat(self, run_id: str) -> None:
        """The run's process is alive (run_liveness.Heartbeat calls this)."""
        with self.engine.begin() as c:
            c.execute(
                runs.update().where(runs.c.run_id == run_id, runs.c.outcome == "running").values(heartbeat_at=_now())
            )

    def close_abandoned_runs(self, site_id: str | None = None) -> list[RunRecord]:
        """Mark `abandoned` the running runs (of one site, or all) whose process is gone; returns them.

        "Gone" follows run_liveness.process_gone: by pid and start token on this host, by
        heartbeat age for another host's runs. Only the outcome changes: what the stage made
        durable (load ledger, backup journal, chain) is resumed by the next run as before.
        """
        query = sa.select(runs).where(runs.c.outcome == "running")
        if site_id is not None:
            query = query.where(runs.c.site_id == site_id)
        now = _now()
        with self.engine.connect() as c:
            candidates = c.execute(query.order_by(runs.c.started_at)).all()
        closed = []
        for row in candidates:
            if not process_gone(
                row.host, row.pid, row.start_token, heartbeat_at=row.heartbeat_at, started_at=row.started_at, now=now
            ):
                continue
            where = f"process {row.pid} on host {row.host}" if row.pid is not None else "its process"
            error = f"abandoned: {where} is gone (noticed {now:%Y-%m-%d %H:%M:%S} UTC)"
            with self.engine.begin() as c:
                changed = c.execute(
                    runs.update()
                    .where(runs.c.run_id == row.run_id, runs.c.outcome == "running")
                    .values(outcome="abandoned", abandoned_at=now, error=error)
                ).rowcount
            if changed:
                closed.append(self.run(row.run_id))
        return closed

    def finish_run(self, run_id: str, outcome: str, figures: Figures | None = None, error: str | None = None) -> None:
        if outcome not in ("succeeded", "failed"):  # abandoned: only close_abandoned_runs says so
            raise ValueError(f"unknown outcome {outcome!r}")
        with self.engine.begin() as c:
            c.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(
                    outcome=outcome,
                    finished_at=_now(),
                    figures=_figures_json(figures),
                    error=error,
                )
            )

    def record_figures(self, run_id: str, figures: Figures) -> None:
        """The figures of a run still going, recorded now: what it is about to make (a scratch restore)
        stays known even if the run is killed before it finishes."""
        with self.engine.begin() as c:
            c.execute(runs.update().where(runs.c.run_id == run_id).values(figures=_figures_json(figures)))

    def run(self, run_id: str) -> RunRecord:
        with self.engine.connect() as c:
            row = c.execute(sa.select(runs).where(runs.c.run_id == run_id)).one_or_none()
        if row is None:
            raise KeyError(run_id)
        return _run_record(row)

    def runs(self, site_id: str, stage: str | None = None) -> list[RunRecord]:
        query = sa.select(runs).where(runs.c.site_id == site_id)
        if stage:
            query = query.where(runs.c.stage == stage)
        with self.engine.connect() as c:
            rows = c.execute(query.order_by(runs.c.started_at, runs.c.run_id)).all()
        return [_run_record(r) for r in rows]

    def latest_run(self, site_id: str, stage: str, *, outcome: str | None = "succeeded") -> RunRecord | None:
        query = sa.select(runs).where(runs.c.site_id == site_id, runs.c.stage == stage)
        if outcome:
            query = query.where(runs.c.outcome == outcome)
        with self.engine.connect() as c:
            row = c.execute(query.order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(1)).first()
        return _run_record(row) if row else None

    # -- per-table figures ------------------------------------------------
    def record_table(self, site_id: str, run_id: str, table_name: str, figures: Figures) -> None:
        payload = _figures_json(figures)
        with self.engine.begin() as c:
            c.execute(
                table_figures.delete().where(table_figures.c.run_id == run_id, table_figures.c.table_name == table_name)
            )
            c.execute(
                table_figures.insert().values(run_id=run_id, table_name=table_name, site_id=site_id, figures=payload)
            )

    def table_figures(self, run_id: str) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(table_figures).where(table_figures.c.run_id == run_id).order_by(table_figures.c.table_name)
            ).all()
        return {r.table_name: json.loads(r.figures) for r in rows}

    # -- site state -------------------------------------------------------
    def state(self, site_id: str) -> SiteState:
        with self.engine.connect() as c:
            value = c.execute(sa.select(site_state.c.state).where(site_state.c.site_id == site_id)).scalar()
        return SiteState(value) if value else SiteState.NEW

    def set_state(self, site_id: str, state: SiteState, run_id: str | None = None) -> None:
        """Move the site to `state`: the same state again (a re-run) or a next one of its life
        (core.site_states); any other move raises SiteLifeRefused and changes nothing."""
        self._move(site_id, state, run_id, only_forward=False)

    def advance_state(self, site_id: str, state: SiteState, run_id: str | None = None) -> bool:
        """Move the site to `state` when that is further along its life; a re-run of an earlier
        stage (or of the same one) leaves the state as it is. Returns whether it moved. A move
        forward that skips what the life requires raises SiteLifeRefused."""
        return self._move(site_id, state, run_id, only_forward=True)

    def require_advance(self, site_id: str, state: SiteState) -> None:
        """Raise SiteLifeRefused now when `advance_state(site_id, state)` would (before a stage
        run records its success)."""
        current = self.state(site_id)
        if is_later(state, current) and not allowed(current, state):
            raise SiteLifeRefused(site_id, current, state)

    def _move(self, site_id: str, state: SiteState, run_id: str | None, *, only_forward: bool) -> bool:
        # Read and write in one transaction: the check holds for the state actually replaced.
        with self.engine.begin() as c:
            previous = c.execute(sa.select(site_state.c.state).where(site_state.c.site_id == site_id)).scalar()
            current = SiteState(previous) if previous else SiteState.NEW
            if only_forward and not is_later(state, current):
                return False
            if not allowed(current, state):
                raise SiteLifeRefused(site_id, current, state)
            values = dict(state=state.value, last_run_id=run_id, updated_at=_now())
            if previous is None:
                c.execute(site_state.insert().values(site_id=site_id, **values))
            else:
                c.execute(site_state.update().where(site_state.c.site_id == site_id).values(**values))
            c.execute(
                site_transitions.insert().values(
                    site_id=site_id, from_state=previous, to_state=state.value, run_id=run_id, at=_now()
                )
            )
        return True

    def transitions(self, site_id: str) -> list[tuple[str | None, str, str | None]]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(site_transitions)
                .where(site_transitions.c.site_id == site_id)
                .order_by(site_transitions.c.transition_id)
            ).all()
        return [(r.from_state, r.to_state, r.run_id) for r in rows]
