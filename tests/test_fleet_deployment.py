"""The fleet on a real Prefect deployment: prefect.yaml deployed, workers sharing the sites.

A Prefect server on PostgreSQL (a fresh database), the `ts24-sites` process pool with
TS24_INVENTORY in its base job template (README, "Running on a Prefect server"), `prefect
deploy --all` from the repository's prefect.yaml, two `prefect worker start` processes with the
secrets in their environment and a staging folder each. Sites on SQLite and MariaDB (over ODBC),
control store and target on PostgreSQL.

1. migrate-fleet over four sites, two of them on one legacy server: every site VALIDATED with
   exact accounting, each migrated once, the legacy-server limit (1) and the target limit (2) held,
   judged from the runs' own times in the control store; both workers ran sites.
2. Two more sites on another server, limits swapped (legacy server 2, target 1): a worker is
   killed (SIGKILL, with its flow runs) in the middle of a site's load; a new worker starts, the
   fleet runs again: the killed site resumes (chunks already loaded are skipped) and ends exact,
   the validated sites are left alone, and the limits held across the kill.

Every process is stopped by its process group when the test ends, passing or not.
Run alone: `.venv/bin/python -m pytest -m deployment`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from deployment_support import (
    BIN,
    ROOT,
    PrefectApi,
    Processes,
    Started,
    attempts,
    children_of,
    clean_environment,
    flow_run_of,
    free_port,
    kill_now,
    legacy_window,
    most_at_once,
    run_cli,
    state_of,
    target_window,
    wait_for,
)

from load.bookkeeping import load_ledger
from load.site_load import prepare_target
from ts24_migrate.cli.main import main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.db import legacy_engine, store_engine
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.demo import generate_site
from ts24_migrate.runs.app import App

pytestmark = [pytest.mark.deployment, pytest.mark.slow, pytest.mark.postgres, pytest.mark.mariadb]

CONTROL_ENV, TARGET_ENV, MARIADB_ENV = "TS24_FLEET_CONTROL_URL", "TS24_FLEET_TARGET_URL", "TS24_FLEET_B_LEGACY_URL"
LEASE_SECONDS = "60"  # a killed run's slots come free after this (5 minutes by default; 60 at least)
CHUNK_ROWS = 100  # many chunks even at a tiny scale: a load killed midway has some done


@dataclass(frozen=True)
class Site:
    id: str
    office: str
    seed: int
    legacy: str  # sqlite | mariadb
    server: str | None
    scale: float = 0.03


FIRST = [
    Site("site-a", "01", 1, "sqlite", "srv-1"),
    Site("site-b", "31", 2, "mariadb", "srv-1"),
    Site("site-c", "48", 3, "sqlite", None),
    Site("site-d", "79", 4, "sqlite", None),
]
SECOND = [Site("site-e", "92", 5, "sqlite", "srv-2", scale=0.08), Site("site-f", "56", 6, "sqlite", "srv-2")]


@dataclass
class Fleet:
    folder: Path
    inventory: Path
    identity: Path
    recipient: str
    control_url: str
    target_url: str
    mariadb_url: str


@dataclass
class Deployment:
    api: PrefectApi
    processes: Processes
    worker_env: Callable[[str], dict[str, str]]

    def start_worker(self, name: str) -> Started:
        return self.processes.start(
            name,
            [str(BIN / "prefect"), "worker", "start", "--pool", "ts24-sites", "--name", name, "--limit", "2"],
            self.worker_env(name),
            ROOT,
        )


# -- the sites --------------------------------------------------------------------------------


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


def _make_site(fleet: Fleet, site: Site) -> dict:
    """The site's legacy database and attachments, its portal side planted in the target."""
    if site.legacy == "sqlite":
        path = fleet.folder / "legacy" / f"{site.id}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        url, reference = f"sqlite:///{path}", f"file:secrets/{site.id}.url"
        _write_secret(fleet.folder / "secrets" / f"{site.id}.url", url)
    else:
        url, reference = fleet.mariadb_url, f"env:{MARIADB_ENV}"
    legacy = legacy_engine(Secret(url), read_only=False)
    target = store_engine(Secret(fleet.target_url))
    try:
        generate_site(
            legacy,
            fleet.folder / "attachments" / site.id,
            target=target,
            seed=site.seed,
            scale=site.scale,
            site_id=site.id,
            office_code=site.office,
        )
    finally:
        legacy.dispose()
        target.dispose()
    entry = {
        "id": site.id,
        "office": site.office,
        "legacy": reference,
        "attachments": f"attachments/{site.id}",
        "cutover": "2025-07-01",
        "backup_recipients": [fleet.recipient],
    }
    if site.server:
        entry["legacy_server"] = site.server
    return entry


def _write_inventory(fleet: Fleet, entries: list[dict], limits: dict) -> None:
    fleet.inventory.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "work_dir": "work",
                "backup_dir": "backups",
                "signing_key": "keys/signing.key",
                "control_store": f"env:{CONTROL_ENV}",
                "target": f"env:{TARGET_ENV}",
                "limits": limits,
                "sites": entries,
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )


@pytest.fixture
def fleet(tmp_path, pg_database, mariadb_database, monkeypatch) -> Fleet:
    folder = tmp_path / "fleet"
    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(folder / "keys" / "signing.key")
    made = Fleet(folder, folder / "sites.yaml", identity, recipient, pg_database(), pg_database(), mariadb_database())
    for name, url in ((CONTROL_ENV, made.control_url), (TARGET_ENV, made.target_url), (MARIADB_ENV, made.mariadb_url)):
        monkeypatch.setenv(name, url)  # this process reads the control store and target too
    target = store_engine(Secret(made.target_url))
    prepare_target(target)
    target.dispose()
    return made


# -- the deployment ---------------------------------------------------------------------------


@pytest.fixture
def deployment(fleet, tmp_path, pg_database) -> Iterator[Deployment]:
    """Server, pool and deployments, two workers; every process stopped at the end, whatever happens."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    database = pg_database().replace("postgresql+psycopg://", "postgresql+asyncpg://")
    processes = Processes(tmp_path)
    api = PrefectApi(api_url)
    client = clean_environment(PREFECT_API_URL=api_url, PREFECT_HOME=str(tmp_path / "prefect-client"))

    def worker_env(name: str) -> dict[str, str]:
        staging = tmp_path / "staging" / name  # what stays on the worker's host (transform spill files)
        staging.mkdir(parents=True, exist_ok=True)
        return {
            **client,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "TMPDIR": str(staging),
            "TS24_MIGRATE_HOME": str(ROOT),
            "TS24_SLOT_LEASE_SECONDS": LEASE_SECONDS,
            CONTROL_ENV: fleet.control_url,
            TARGET_ENV: fleet.target_url,
            MARIADB_ENV: fleet.mariadb_url,
        }

    try:
        processes.start(
            "server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ui",
                "--no-scheduler",
            ],
            clean_environment(
                PREFECT_HOME=str(tmp_path / "prefect-server"),
                PREFECT_API_DATABASE_CONNECTION_URL=database,
                PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS="2",
            ),
            tmp_path,
        )
        wait_for("the Prefect server", api.healthy, timeout=150, on_timeout=processes.logs)
        # README step 3: the pool, with the inventory's path in its base job template.
        template = tmp_path / "pool.json"
        run_cli(
            [
                str(BIN / "prefect"),
                "work-pool",
                "get-default-base-job-template",
                "--type",
                "process",
                "--file",
                str(template),
            ],
            client,
            tmp_path,
        )
        job = json.loads(template.read_text(encoding="utf-8"))
        job["variables"]["properties"]["env"]["default"] = {"TS24_INVENTORY": str(fleet.inventory)}
        template.write_text(json.dumps(job), encoding="utf-8")
        run_cli(
            [
                str(BIN / "prefect"),
                "work-pool",
                "create",
                "ts24-sites",
                "--type",
                "process",
                "--base-job-template",
                str(template),
            ],
            client,
            tmp_path,
        )
        run_cli(
            [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], {**client, "TS24_MIGRATE_HOME": str(ROOT)}, ROOT
        )
        made = Deployment(api, processes, worker_env)
        made.start_worker("w1")
        made.start_worker("w2")
        yield made
    finally:
        processes.stop_all()
        api.close()


# -- what the test reads ----------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _site_runs(app: App, site_id: str) -> list:
    return [
        r
        for r in app.control_store.runs(site_id)
        if r.stage in ("assess", "backup", "verify-backup", "load", "validate")
    ]


def _wait_for_sites(
    deployment: Deployment,
    app: App,
    fleet_run: str,
    site_ids: set[str],
    *,
    ignore: set[str] = frozenset(),
    timeout: float,
) -> list[dict]:
    """Wait for the fleet run, then until every site of `site_ids` is VALIDATED and every migrate-site
    run created since the fleet run (but those of `ignore`: killed) has ended; returns those runs."""
    api = deployment.api

    def fleet_done() -> bool:
        state = state_of(api.flow_run(fleet_run))
        assert state not in ("FAILED", "CRASHED", "CANCELLED"), (
            f"migrate-fleet ended {state}\n{deployment.processes.logs()}"
        )
        return state == "COMPLETED"

    wait_for("the migrate-fleet run", fleet_done, timeout=timeout, on_timeout=deployment.processes.logs)
    since = api.flow_run(fleet_run)["created"]

    def sites_done() -> list[dict] | None:
        mine = [
            r for r in api.flow_runs("migrate-site", "migrate-site") if r["created"] >= since and r["id"] not in ignore
        ]
        failed = [r for r in mine if state_of(r) in ("FAILED", "CRASHED", "CANCELLED")]
        assert not failed, (
            f"site runs ended {[(r['parameters']['site_id'], state_of(r)) for r in failed]}\n"
            f"{deployment.processes.logs()}"
        )
        validated = all(app.control_store.state(site_id) == SiteState.VALIDATED for site_id in site_ids)
        return mine if validated and all(state_of(r) == "COMPLETED" for r in mine) else None

    return wait_for(
        "the sites validated and their migrate-site runs ended",
        sites_done,
        timeout=timeout,
        every=2,
        on_timeout=deployment.processes.logs,
    )


def _workers_of(deployment: Deployment, runs: list[dict]) -> dict[str, str]:
    """site -> the worker that ran its flow run: the run's own log lines go to that worker's output
    (several workers may log "submitting" for one run; only one runs it)."""
    found = {}
    for started in deployment.processes.started:
        text = started.log.read_text(encoding="utf-8", errors="replace")
        for run in runs:
            if f"Beginning subflow run '{run['name']}'" in text or f"Beginning flow run '{run['name']}'" in text:
                found[run["parameters"]["site_id"]] = started.name
    return found


def _assert_validated_exactly(app: App, site_id: str) -> None:
    assert app.control_store.state(site_id) == SiteState.VALIDATED, site_id
    validation = app.control_store.latest_run(site_id, "validate")
    accounting = validation.figures["accounting"]
    assert validation.figures["passed"] and validation.figures["parity"]["exact"], (site_id, validation.figures)
    assert accounting["ok"] and accounting["tables_with_problems"] == 0, (site_id, accounting)
    assert accounting["source"] == accounting["backed_up"] > 0, (site_id, accounting)
    load = app.control_store.latest_run(site_id, "load")
    assert load.figures["source_rows"] == load.figures["loaded"] + load.figures["rejected"], (site_id, load.figures)


def _assert_migrated_once(app: App, site_id: str) -> None:
    stages = [r.stage for r in _site_runs(app, site_id)]
    assert sorted(stages) == sorted(["assess", "backup", "verify-backup", "load", "validate"]), (site_id, stages)
    assert {r.outcome for r in _site_runs(app, site_id)} == {"succeeded"}, site_id


def _shown(windows: list) -> str:
    return "; ".join(
        f"{w.site_id} {w.start:%H:%M:%S.%f}-{w.end:%H:%M:%S.%f}" for w in sorted(windows, key=lambda w: w.start)
    )


def _windows(app: App, site_ids: list[str], cut_at: dt.datetime) -> tuple[list, list]:
    legacy, target = [], []
    for site_id in site_ids:
        for attempt in attempts(_site_runs(app, site_id)):
            legacy.append(legacy_window(site_id, attempt, cut_at))
            window = target_window(site_id, attempt, cut_at)
            if window is not None:
                target.append(window)
    return legacy, target


# -- the test ---------------------------------------------------------------------------------


def test_a_fleet_on_a_real_deployment_shares_workers_keeps_limits_and_survives_a_killed_worker(
    fleet, deployment, capsys
):
    api = deployment.api
    entries = [_make_site(fleet, site) for site in FIRST]
    _write_inventory(fleet, entries, {"legacy_server": 1, "target": 2})
    app = App(fleet.inventory)
    parameters = {"custodian_identity": str(fleet.identity), "chunk_rows": CHUNK_ROWS}

    # 1. Four sites, two workers, legacy server limit 1 (site-a and site-b share srv-1), target limit 2.
    first_fleet = api.run_deployment("migrate-fleet", "migrate-fleet", parameters)
    site_runs = _wait_for_sites(deployment, app, first_fleet, {s.id for s in FIRST}, timeout=300)
    assert {r["parameters"]["site_id"] for r in site_runs} == {s.id for s in FIRST}
    for site in FIRST:
        _assert_validated_exactly(app, site.id)
        _assert_migrated_once(app, site.id)
    legacy, target = _windows(app, [s.id for s in FIRST], _utcnow())
    assert most_at_once(w for w in legacy if w.site_id in ("site-a", "site-b")) == 1, _shown(legacy)
    assert most_at_once(target) <= 2, _shown(target)
    assert most_at_once(legacy) >= 2, f"the sites ran one after the other: {_shown(legacy)}"
    workers = _workers_of(deployment, site_runs)
    assert set(workers) == {s.id for s in FIRST} and set(workers.values()) == {"w1", "w2"}, workers
    assert api.artifacts("ts24-fleet-status"), "the flows publish the fleet status"
    assert (fleet.folder / "work" / "fleet" / "fleet-status.html").is_file()

    # 2. Two more sites on srv-2, limits swapped; a worker killed in the middle of site-e's load.
    entries += [_make_site(fleet, site) for site in SECOND]
    _write_inventory(fleet, entries, {"legacy_server": 2, "target": 1})
    app = App(fleet.inventory)
    target_engine = store_engine(Secret(fleet.target_url))

    def loading_midway() -> bool:
        load = app.control_store.latest_run("site-e", "load", outcome=None)
        if load is None or load.outcome != "running":
            return False
        with target_engine.connect() as c:
            done = c.execute(
                sa.select(sa.func.count()).select_from(load_ledger).where(load_ledger.c.site_id == "site-e")
            ).scalar_one()
        return done >= 2

    api.run_deployment("migrate-fleet", "migrate-fleet", parameters)
    wait_for(
        "site-e loading, two chunks done", loading_midway, timeout=240, every=0.2, on_timeout=deployment.processes.logs
    )
    running = {}  # worker -> {flow run: site} of the flow runs it is running now
    for started in deployment.processes.started:
        if started.name.startswith("w"):
            for child in children_of(started.pid):
                run_id = flow_run_of(child)
                if run_id:
                    running.setdefault(started.name, {})[run_id] = api.flow_run(run_id)["parameters"].get("site_id")
    (victim_name,) = [name for name, runs in running.items() if "site-e" in runs.values()]
    victim = next(s for s in deployment.processes.started if s.name == victim_name)
    killed_runs = running[victim_name]
    kill_now(victim.pid)
    killed_at = _utcnow()
    victim.process.wait(timeout=30)
    deployment.start_worker("w3")

    third_fleet = api.run_deployment("migrate-fleet", "migrate-fleet", parameters)
    _wait_for_sites(deployment, app, third_fleet, {s.id for s in SECOND}, ignore=set(killed_runs), timeout=300)
    target_engine.dispose()

    # The killed site resumed: its first load left chunks that the second one skipped; exact at the end.
    killed_sites = {site for site in killed_runs.values() if site}
    assert "site-e" in killed_sites
    loads = app.control_store.runs("site-e", "load")
    # killed: it never finished; the next load run noticed its process gone and closed it
    assert loads[0].outcome == "abandoned" and loads[0].finished_at is None and loads[0].abandoned_at
    assert loads[-1].outcome == "succeeded" and loads[-1].figures["chunks_skipped"] >= 2, loads[-1].figures
    for site in [*FIRST, *SECOND]:
        _assert_validated_exactly(app, site.id)
        if site.id not in killed_sites:
            _assert_migrated_once(app, site.id)  # the validated sites were left alone by both fleet runs
    assert len([r for r in app.control_store.runs("site-e", "validate") if r.outcome == "succeeded"]) == 1

    legacy, target = _windows(app, [s.id for s in SECOND], killed_at)
    assert most_at_once(target) == 1, _shown(target)  # the target limit, 1, across the kill and the resume
    assert most_at_once(legacy) == 2, _shown(legacy)  # srv-2 took its two sites at once
    # Fleet status: every site validated, nothing shown as running or blocked after the resume.
    capsys.readouterr()
    assert main(["-i", str(fleet.inventory), "--json", "fleet", "status", "--no-page"]) == 0
    shown = {s["site_id"]: s for s in json.loads(capsys.readouterr().out)["sites"]}
    assert {(s["state"], s["attention"], s["running"], tuple(s["blockers"])) for s in shown.values()} == {
        ("VALIDATED", "to do", None, ())
    }, shown
