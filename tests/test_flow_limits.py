"""Fleet concurrency limits on real Prefect: a site waits for its legacy server's slot, then runs."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from flows.limits import Limit, legacy_server_limit, target_limit, write_limit
from ts24_migrate.app import App
from ts24_migrate.config import load_inventory
from ts24_migrate.control_store import SiteState


def _with_limits(inventory: Path, limits: dict, **site_fields) -> None:
    """Add `limits:` to a demo inventory, and `site_fields` to each of its sites."""
    text = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    text["limits"] = limits
    for site in text["sites"]:
        site.update(site_fields)
    inventory.write_text(yaml.safe_dump(text, sort_keys=False), encoding="utf-8")


def test_limits_are_named_after_the_server_and_the_target_reference(tmp_path):
    path = tmp_path / "sites.yaml"
    path.write_text("""
target: file:/etc/ts24/target.url
limits: {legacy_server: 2, target: 3}
sites:
  - {id: hn-01, office: "01", legacy: env:A, cutover: 2025-07-01, legacy_server: sql-hanoi.bhxh}
  - {id: hn-02, office: "01", legacy: env:B, cutover: 2025-07-01}
""", encoding="utf-8")
    inventory = load_inventory(path)
    assert legacy_server_limit(inventory, inventory.site("hn-01")) == Limit(
        "ts24-legacy-sql-hanoi.bhxh", 2, "legacy server sql-hanoi.bhxh")
    assert legacy_server_limit(inventory, inventory.site("hn-02")).name == "ts24-legacy-hn-02"  # its own server
    assert target_limit(inventory) == Limit("ts24-target-file-etc-ts24-target.url", 3, "the target")

    path.write_text(path.read_text(encoding="utf-8").replace("limits: {legacy_server: 2, target: 3}", ""),
                    encoding="utf-8")
    unlimited = load_inventory(path)
    assert legacy_server_limit(unlimited, unlimited.site("hn-01")) is None and target_limit(unlimited) is None


@pytest.mark.prefect
def test_a_limit_is_written_with_the_inventorys_size(prefect_server):
    from prefect.client.orchestration import get_client

    name = f"ts24-legacy-test-{uuid.uuid4().hex[:8]}"
    write_limit(Limit(name, 2, "test"))
    with get_client(sync_client=True) as client:
        created = client.read_global_concurrency_limit_by_name(name)
        assert (created.limit, created.active) == (2, True)
    write_limit(Limit(name, 5, "test"))  # the inventory changed: Prefect follows
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).limit == 5


@pytest.mark.prefect
@pytest.mark.slow
def test_a_site_waits_for_its_legacy_servers_slot(prefect_server, demo_site):
    from prefect.concurrency.sync import concurrency

    from flows.migrate_site import migrate_site

    site = demo_site(scale=0.03, site_id="hn-01")
    server = f"shared-{uuid.uuid4().hex[:8]}"  # the Prefect server outlives this test: a name of its own
    _with_limits(site.inventory, {"legacy_server": 1, "target": 2}, legacy_server=server)
    store = App(site.inventory).control_store
    finished: dict[str, object] = {}

    def run_site() -> None:
        try:
            finished["result"] = migrate_site(site_id="hn-01", inventory=str(site.inventory),
                                              custodian_identity=str(site.identity))
        except BaseException as exc:  # handed to the test thread
            finished["error"] = exc

    write_limit(Limit(f"ts24-legacy-{server}", 1, "test"))
    with concurrency(f"ts24-legacy-{server}", occupy=1, strict=True):  # another site holds the one slot
        runner = threading.Thread(target=run_site)
        runner.start()
        time.sleep(6)  # the flow run has started and asked for the slot by now
        assert runner.is_alive() and store.runs("hn-01") == []  # not one stage has started
        released = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    runner.join(timeout=300)
    assert not runner.is_alive() and "error" not in finished, finished.get("error")
    assert finished["result"]["validate"]["passed"] and store.state("hn-01") == SiteState.VALIDATED
    assert min(run.started_at for run in store.runs("hn-01")) >= released
