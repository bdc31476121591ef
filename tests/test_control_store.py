"""The control store keeps runs, figures and site states on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ts24_migrate.core.control_store import ControlStore, SiteLifeRefused, SiteState
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.stage_runs import stage_run


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, sqlite_url):
    url = sqlite_url("control") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = store_engine(Secret(url))
    yield ControlStore(engine)
    engine.dispose()


def test_runs_figures_and_states(store):
    assert store.state("hn-01") is SiteState.NEW
    with stage_run(store, None, "hn-01", "assess", success_state=SiteState.ASSESSED) as run:
        run.figures["tables"] = 11
        store.record_table("hn-01", run.run_id, "HO_SO", {"rows": 2000, "role": "mapped"})
    assert store.state("hn-01") is SiteState.ASSESSED
    latest = store.latest_run("hn-01", "assess")
    assert latest.run_id == run.run_id and latest.outcome == "succeeded"
    assert latest.figures == {"tables": 11}
    assert store.table_figures(run.run_id) == {"HO_SO": {"rows": 2000, "role": "mapped"}}
    # Created on first use, and a second ControlStore on the same database sees the same data.
    assert ControlStore(store.engine).latest_run("hn-01", "assess").run_id == run.run_id


def test_failed_stage_is_recorded_without_secret_and_state_kept(store):
    with stage_run(store, None, "hn-01", "assess", success_state=SiteState.ASSESSED):
        pass
    with pytest.raises(RuntimeError):
        with stage_run(store, None, "hn-01", "load", success_state=SiteState.LOADED):
            raise RuntimeError("cannot reach postgresql://migrator:Very$ecret@db/target")
    failed = store.runs("hn-01", "load")[-1]
    assert failed.outcome == "failed"
    assert "Very$ecret" not in failed.error and "***" in failed.error
    assert store.state("hn-01") is SiteState.ASSESSED
    assert store.latest_run("hn-01", "load") is None


def test_rerunning_an_earlier_stage_never_moves_state_back(store):
    for stage, state in [
        ("assess", SiteState.ASSESSED),
        ("backup", SiteState.BACKED_UP),
        ("load", SiteState.LOADED),
        ("assess", SiteState.ASSESSED),
    ]:
        with stage_run(store, None, "hn-01", stage, success_state=state) as run:
            if stage == "backup":  # as runs.backup does: extraction and backup are one stream
                store.advance_state("hn-01", SiteState.EXTRACTED, run.run_id)
    assert store.state("hn-01") is SiteState.LOADED
    assert [t[1] for t in store.transitions("hn-01")] == ["ASSESSED", "EXTRACTED", "BACKED_UP", "LOADED"]


def test_a_success_its_life_does_not_allow_fails_the_run(store):
    """A stage that would skip what the site's life requires: its run is recorded failed, nothing moves."""
    with stage_run(store, None, "hn-01", "assess", success_state=SiteState.ASSESSED):
        pass
    with pytest.raises(SiteLifeRefused, match="cannot move from ASSESSED to VALIDATED"):
        with stage_run(store, None, "hn-01", "validate", success_state=SiteState.VALIDATED) as run:
            run.figures["passed"] = True
    failed = store.runs("hn-01", "validate")[-1]
    assert failed.outcome == "failed" and failed.error.startswith("SiteLifeRefused: site hn-01: its state cannot")
    assert failed.figures == {"passed": True}
    assert store.state("hn-01") is SiteState.ASSESSED
    assert [t[1] for t in store.transitions("hn-01")] == ["ASSESSED"]


class _Counted(StageResult):
    tables: int
    by_role: dict[str, int]


def test_typed_figures_are_stored_as_their_data_and_read_back_as_their_type(store):
    """A stage's typed result goes in as it is; the stored JSON is the data it dumps to."""
    figures = _Counted(tables=3, by_role={"mapped": 2, "unmapped": 1})
    run = store.start_run("hn-01", "assess")
    store.record_table("hn-01", run, "HO_SO", figures)
    store.finish_run(run, "succeeded", figures)
    record = store.run(run)
    assert record.figures == {"tables": 3, "by_role": {"mapped": 2, "unmapped": 1}}
    assert store.table_figures(run) == {"HO_SO": record.figures}
    assert record.figures_as(_Counted) == figures
