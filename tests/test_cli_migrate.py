"""`ts24-migrate migrate` runs the stages directly, without Prefect, and records exactly what the
`migrate-site` flow records: the same stage runs in the control store, the same ledger events."""

from __future__ import annotations

import json

import pytest

from ts24_migrate.cli.main import main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.runs.app import App


def _records(site) -> dict:
    app = App(site.inventory)
    store = app.control_store
    runs = store.runs(site.site_id)
    events = [json.loads(line) for line in app.ledger_path(site.site_id).read_text(encoding="utf-8").splitlines()]
    return {
        "state": store.state(site.site_id),
        "runs": [(r.stage, r.outcome, r.parent_run_id, sorted(r.figures)) for r in runs],
        # Which tables each run recorded figures for (the demo data itself differs a little by site id).
        "tables": [(r.stage, sorted(store.table_figures(r.run_id))) for r in runs],
        "events": [(e["stage"], e["event"]) for e in events],
    }


@pytest.mark.prefect
@pytest.mark.slow
def test_migrate_directly_records_what_the_flow_records(prefect_server, demo_site, monkeypatch):
    from flows.migrate_site import migrate_site

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    direct, flow = demo_site(scale=0.03, seed=41, site_id="demo"), demo_site(scale=0.03, seed=41, site_id="demo2")
    assert main(["-i", str(direct.inventory), "migrate", "demo", "--identity", str(direct.identity)]) == 0
    migrate_site(site_id="demo2", inventory=str(flow.inventory), custodian_identity=str(flow.identity))

    by_cli, by_flow = _records(direct), _records(flow)
    assert by_cli["state"] is by_flow["state"] is SiteState.VALIDATED
    assert [r[0] for r in by_cli["runs"]] == ["assess", "backup", "verify-backup", "load", "validate"]
    assert by_cli == by_flow
