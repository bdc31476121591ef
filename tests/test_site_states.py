"""The control store refuses every move of a site's state that its life lacks, on SQLite and PostgreSQL.

The expected life is written out here, from shared/DESIGN.md and what the
stages do (not read from core.site_states), so that a change to the table
shows up as a failing pair.
"""

from __future__ import annotations

import itertools
import pickle
import uuid

import pytest
import sqlalchemy as sa

from ts24_migrate.core.control_store import ControlStore, SiteLifeRefused, SiteState
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.errors import ExitCode, GateRefused, documented_class
from ts24_migrate.core.secrets import Secret

S = SiteState
DESIGN_PATH = [
    S.NEW,
    S.ASSESSED,
    S.EXTRACTED,
    S.BACKED_UP,
    S.BACKUP_VERIFIED,
    S.LOADED,
    S.VALIDATED,
    S.RECONCILING,
    S.DRAINED,
    S.FINAL_BACKUP_VERIFIED,
    S.PURGE_APPROVED,
    S.PURGED,
    S.CERTIFIED,
]
SHORTCUTS = {
    (S.BACKED_UP, S.LOADED),  # loaded after a verification without a key (no BACKUP_VERIFIED)
    (S.VALIDATED, S.DRAINED),  # drained on its first reconciliation
}
ALLOWED = {(a, b) for a, b in itertools.pairwise(DESIGN_PATH)} | SHORTCUTS | {(s, s) for s in S}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path_factory):
    """One store per backend for the whole matrix (each pair uses a site of its own)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('life') / 'control.sqlite'}"
        name = None
    else:
        admin = request.getfixturevalue("_pg_admin")
        name = f"ts24_t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = store_engine(Secret(url))
    yield ControlStore(engine)
    engine.dispose()
    if name is not None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _site_in(store: ControlStore, state: SiteState) -> str:
    """A new site walked along the design path up to `state`."""
    site_id = f"s-{uuid.uuid4().hex[:8]}"
    for step in DESIGN_PATH[1 : DESIGN_PATH.index(state) + 1]:
        store.set_state(site_id, step, f"run-{step.value}")
    assert store.state(site_id) is state
    return site_id


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(S, S)), ids=lambda s: s.value)
def test_every_move_of_a_site_state(store, current, wanted):
    site_id = _site_in(store, current)
    before = store.transitions(site_id)
    if (current, wanted) in ALLOWED:
        store.set_state(site_id, wanted, "run-x")
        assert store.state(site_id) is wanted
        assert store.transitions(site_id) == [
            *before,
            (None if current is S.NEW else current.value, wanted.value, "run-x"),
        ]
        return
    with pytest.raises(SiteLifeRefused) as refused:
        store.set_state(site_id, wanted, "run-x")
    error = refused.value
    assert isinstance(error, GateRefused) and error.exit_code == ExitCode.REFUSED == 4
    assert documented_class(error) == "GateRefused"  # what --json reports
    assert f"site {site_id}: its state cannot move from {current.value} to {wanted.value}" in str(error)
    assert str(error).endswith("nothing was changed")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)  # as a Prefect result store keeps it
    assert store.state(site_id) is current and store.transitions(site_id) == before


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(S, S)), ids=lambda s: s.value)
def test_advancing_leaves_earlier_states_and_refuses_skips(store, current, wanted):
    """What a stage run does on success: a re-run of an earlier (or the same) stage moves nothing."""
    site_id = _site_in(store, current)
    before = store.transitions(site_id)
    if DESIGN_PATH.index(wanted) <= DESIGN_PATH.index(current):
        assert store.advance_state(site_id, wanted, "run-x") is False
        assert store.state(site_id) is current and store.transitions(site_id) == before
    elif (current, wanted) in ALLOWED:
        store.require_advance(site_id, wanted)
        assert store.advance_state(site_id, wanted, "run-x") is True
        assert store.state(site_id) is wanted
    else:
        with pytest.raises(SiteLifeRefused):
            store.require_advance(site_id, wanted)
        with pytest.raises(SiteLifeRefused):
            store.advance_state(site_id, wanted, "run-x")
        assert store.state(site_id) is current and store.transitions(site_id) == before


def test_a_custodian_verifies_with_a_control_store_that_never_saw_the_backup(demo_site, monkeypatch, tmp_path):
    """The verification is recorded and passes; the state of that store does not jump to BACKUP_VERIFIED."""
    import yaml

    from ts24_migrate.runs.app import App
    from ts24_migrate.runs.assess import assess_step
    from ts24_migrate.runs.backup import backup_step, verify_step

    site = demo_site(scale=0.01, seed=6)
    app = App(site.inventory)
    try:
        assess_step(app, site.site_id)
        backup_step(app, site.site_id)
    finally:
        app.close()
    # The custodian's machine: the same backup folder, a control store of its own.
    document = yaml.safe_load(site.inventory.read_text(encoding="utf-8"))
    document["control_store"] = "env:TS24_T_CUSTODIAN_CONTROL"
    site.inventory.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("TS24_T_CUSTODIAN_CONTROL", f"sqlite:///{tmp_path / 'custodian-control.sqlite'}")
    custodian = App(site.inventory)
    try:
        result = verify_step(custodian, site.site_id, identity=site.identity)
        store = custodian.control_store
        assert result.ok is True and result.mode == "decrypted"
        assert store.run(result.run_id).outcome == "succeeded"
        assert store.state(site.site_id) is S.NEW and store.transitions(site.site_id) == []
    finally:
        custodian.close()
