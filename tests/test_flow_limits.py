"""Fleet concurrency limits on real Prefect: a site waits for its legacy server's slot, then runs."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from test_stages_support import through_inventory

from flows.limits import Limit, legacy_server_limit, target_limit, write_limit
from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.runs.app import App


def _with_limits(
    inventory: Path, limits: dict, *, target: str | None = None, servers: dict[str, str] | None = None
) -> None:
    """Add `limits:` to a demo inventory; optionally another `target:` reference, and a
    `legacy_server:` for the sites named in `servers`."""
    text = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    text["limits"] = limits
    if target:
        text["target"] = target
    for site in text["sites"]:
        if site["id"] in (servers or {}):
            site["legacy_server"] = servers[site["id"]]
    inventory.write_text(yaml.safe_dump(text, sort_keys=False), encoding="utf-8")


def test_limits_are_named_after_the_server_and_the_target_reference(tmp_path):
    path = tmp_path / "sites.yaml"
    path.write_text(
        """
target: file:/etc/ts24/target.url
limits: {legacy_server: 2, target: 3}
sites:
  - {id: hn-01, office: "01", legacy: env:A, cutover: 2025-07-01, legacy_server: sql-hanoi.bhxh}
  - {id: hn-02, office: "01", legacy: env:B, cutover: 2025-07-01}
""",
        encoding="utf-8",
    )
    inventory = load_inventory(path)
    assert legacy_server_limit(inventory, inventory.site("hn-01")) == Limit(
        "ts24-legacy-sql-hanoi.bhxh", 2, "legacy server sql-hanoi.bhxh"
    )
    assert legacy_server_limit(inventory, inventory.site("hn-02")).name == "ts24-legacy-hn-02"  # its own server
    assert target_limit(inventory) == Limit("ts24-target-file-etc-ts24-target.url", 3, "the target")

    path.write_text(
        path.read_text(encoding="utf-8").replace("limits: {legacy_server: 2, target: 3}", ""), encoding="utf-8"
    )
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


def _started_in_a_thread(run: Callable[[], dict]) -> tuple[threading.Thread, dict[str, object]]:
    """`run` started in a thread; its result, or its exception, lands in the dict returned."""
    finished: dict[str, object] = {}

    def in_thread() -> None:
        try:
            finished["result"] = run()
        except BaseException as exc:  # handed to the test thread
            finished["error"] = exc

    runner = threading.Thread(target=in_thread)
    runner.start()
    return runner, finished


def _waits_for_its_slot(limit: str, run: Callable[[], dict], started: Callable[[], bool]) -> tuple[dict, dt.datetime]:
    """Run `run` in a thread while the test holds the one slot of `limit`: it must not have
    `started` six seconds later, and must end once the slot is free. Returns its result and
    when the slot was released."""
    from prefect.concurrency.sync import concurrency

    write_limit(Limit(limit, 1, "test"))
    with concurrency(limit, occupy=1, strict=True):  # another site holds the one slot
        runner, finished = _started_in_a_thread(run)
        time.sleep(6)  # the flow run has started and asked for the slot by now
        assert runner.is_alive() and not started()
        released = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    runner.join(timeout=300)
    assert not runner.is_alive() and "error" not in finished, finished.get("error")
    return finished["result"], released


@pytest.mark.prefect
@pytest.mark.slow
def test_a_site_waits_for_its_legacy_servers_slot(prefect_server, demo_site):
    from flows.migrate_site import migrate_site

    site = demo_site(scale=0.03, site_id="hn-01")
    server = f"shared-{uuid.uuid4().hex[:8]}"  # the Prefect server outlives this test: a name of its own
    _with_limits(site.inventory, {"legacy_server": 1, "target": 2}, servers={"hn-01": server})
    store = App(site.inventory).control_store
    result, released = _waits_for_its_slot(
        f"ts24-legacy-{server}",
        lambda: migrate_site(site_id="hn-01", inventory=str(site.inventory), custodian_identity=str(site.identity)),
        started=lambda: bool(store.runs("hn-01")),
    )  # not one stage
    assert result["validate"].passed and store.state("hn-01") == SiteState.VALIDATED
    assert min(run.started_at for run in store.runs("hn-01")) >= released


@pytest.mark.prefect
@pytest.mark.slow
def test_a_reconciliation_waits_for_the_targets_slot(prefect_server, tmp_path, monkeypatch):
    from flows.reconcile_site import reconcile_site

    folder = tmp_path / "demo"
    recipient = generate_custodian_identity(folder / "keys" / "alice.age-identity")
    generate_signing_key(folder / "keys" / "signing.key")
    inventory = write_demo_inventory(
        folder, scale=0.03, backup_recipients=[recipient], signing_key=Path("keys/signing.key")
    )
    through_inventory(
        inventory,
        "demo",
        "assess",
        "backup",
        "verify-identity",
        "load",
        "validate",
        identity=folder / "keys" / "alice.age-identity",
    )  # by hand: steps take no slots
    reference = f"env:TS24_TARGET_{uuid.uuid4().hex[:8].upper()}"  # a limit of this test's own
    monkeypatch.setenv(reference[4:], (folder / "secrets" / "target.url").read_text(encoding="utf-8").strip())
    _with_limits(inventory, {"legacy_server": 1, "target": 1}, target=reference)
    store = App(inventory).control_store
    result, released = _waits_for_its_slot(
        f"ts24-target-env-{reference[4:]}",
        lambda: reconcile_site(site_id="demo", inventory=str(inventory)),
        started=lambda: bool(store.runs("demo", "reconcile")),
    )
    assert result["demo"].mode == "baseline" and store.state("demo") == SiteState.RECONCILING
    assert store.runs("demo", "reconcile")[0].started_at >= released


@pytest.mark.prefect
@pytest.mark.slow
def test_a_sweep_reconciles_a_busy_site_after_the_others(prefect_server, tmp_path):
    from prefect.concurrency.sync import concurrency

    from flows.reconcile_site import reconcile_site

    folder = tmp_path / "fleet"
    recipient = generate_custodian_identity(folder / "keys" / "alice.age-identity")
    generate_signing_key(folder / "keys" / "signing.key")
    for site_id, office, seed in (("busy", "01", 1), ("free", "31", 2)):  # one target: offices apart
        inventory = write_demo_inventory(
            folder,
            site_id=site_id,
            office_code=office,
            seed=seed,
            scale=0.03,
            backup_recipients=[recipient],
            signing_key=Path("keys/signing.key"),
        )
    for site_id in ("busy", "free"):
        through_inventory(
            inventory,
            site_id,
            "assess",
            "backup",
            "verify-identity",
            "load",
            "validate",
            identity=folder / "keys" / "alice.age-identity",
        )
    server = f"busy-{uuid.uuid4().hex[:8]}"
    _with_limits(inventory, {"legacy_server": 1}, servers={"busy": server})  # "busy" alone on its server
    store = App(inventory).control_store
    write_limit(Limit(f"ts24-legacy-{server}", 1, "test"))
    with concurrency(f"ts24-legacy-{server}", occupy=1, strict=True):  # a migration holds "busy"'s server
        runner, finished = _started_in_a_thread(lambda: reconcile_site(inventory=str(inventory)))
        deadline = time.monotonic() + 120
        while not [r for r in store.runs("free", "reconcile") if r.finished_at] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [r for r in store.runs("free", "reconcile") if r.finished_at], "the free site waited for the busy one"
        assert store.runs("busy", "reconcile") == [] and runner.is_alive()
    runner.join(timeout=300)
    assert not runner.is_alive() and "error" not in finished, finished.get("error")
    assert list(finished["result"]) == ["free", "busy"]  # in the order they were reconciled
    assert store.runs("busy", "reconcile")[0].started_at >= store.runs("free", "reconcile")[0].finished_at
