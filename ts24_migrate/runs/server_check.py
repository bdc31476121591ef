"""The legacy server gate: every stage works on the server the assessment read, or refuses.

One call at the start of each step's stage run (assess, backup, load,
validate, reconcile): it asks the legacy server who it is, records that in the
run's figures (``server``), and compares it with the identity the site's latest
assessment recorded (server_identity.py says which facts count). A different
server is refused (exit code 4), naming both servers and what to do.

Re-assessing is how an operator says "the database really moved here": it is
accepted as long as nothing was done yet from the old server (state NEW or
ASSESSED); past that, `assess --server-moved` must say so, or it is refused too,
so that a migrate-site flow run (which re-assesses first) cannot adopt a wrong
server by itself.
"""

from __future__ import annotations

from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import GateRefused
from ts24_migrate.core.server_identity import ServerIdentity, probe_server_identity
from ts24_migrate.core.stage_runs import StageRun
from ts24_migrate.runs.app import App

ASSESS = "assess"
_ORDER = list(SiteState)


def assessed_server(app: App, site_id: str) -> tuple[str, ServerIdentity | None] | None:
    """(run id, identity) of the site's latest successful assessment; None when never assessed."""
    run = app.control_store.latest_run(site_id, ASSESS)
    if run is None:
        return None
    recorded = run.figures.get("server")
    return run.run_id, ServerIdentity.from_dict(recorded) if recorded else None


def check_legacy_server(app: App, site_id: str, run: StageRun, *, server_moved: bool = False) -> ServerIdentity:
    """Record the legacy server this run reached; refuse one that is not the assessed server.

    Without an assessment there is nothing to compare with (the stage-order gate
    refuses that case). `server_moved` only matters to the assess stage.
    """
    with app.legacy_engine(app.site(site_id)).connect() as conn:
        reached = probe_server_identity(conn)
    run.figures["server"] = reached.to_dict()
    assessed = assessed_server(app, site_id)
    if assessed is None:
        return reached
    assessed_run, expected = assessed
    if run.stage == ASSESS:
        if expected is None or reached == expected:
            return reached
        if server_moved:
            run.figures["server_moved_from"] = expected.to_dict()
            return reached
        if _ORDER.index(app.control_store.state(site_id)) <= _ORDER.index(SiteState.ASSESSED):
            return reached  # nothing done yet from the old server: the new assessment simply replaces it
        raise GateRefused(
            f"site {site_id}: the legacy server reached is not the one the site's work so far was done on: "
            f"reached {reached.describe()}; assessed (run {assessed_run}) {expected.describe()}; "
            f"differs in {', '.join(reached.differences(expected))}. Fix the legacy URL "
            f"({app.site(site_id).legacy}) if it points to the wrong server; if the database really moved "
            f"to this server, re-assess with `ts24-migrate assess {site_id} --server-moved`"
        )
    if expected is None:
        raise GateRefused(
            f"site {site_id}: its assessment (run {assessed_run}) recorded no server identity (an older "
            f"release): re-assess it first: `ts24-migrate assess {site_id}`"
        )
    if reached != expected:
        raise GateRefused(
            f"site {site_id}: refusing to {run.stage} from another legacy server than the one assessed: "
            f"reached {reached.describe()}; assessed (run {assessed_run}) {expected.describe()}; "
            f"differs in {', '.join(reached.differences(expected))}. Fix the legacy URL "
            f"({app.site(site_id).legacy}) if it points to the wrong server; if the database really moved "
            f"to this server, re-assess: `ts24-migrate assess {site_id} --server-moved`"
        )
    return reached
