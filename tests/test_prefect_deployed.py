"""The deployments of prefect.yaml work as deployed: run with the parameters the yaml gives them.

A scheduled run passes the deployment's parameters and nothing else, in the code
checkout on a worker host (prefect.yaml's pull step). The inventory comes from
$TS24_INVENTORY, set on the work pool or the worker.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from test_stages_support import through_inventory

from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ConfigError
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.runs.app import App

ROOT = Path(__file__).resolve().parents[1]


def _deployment(name: str) -> dict:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in config["deployments"] if d["name"] == name]
    return deployment


def _flow(entrypoint: str):
    file_name, flow_name = entrypoint.split(":")
    return getattr(importlib.import_module(file_name.removesuffix(".py").replace("/", ".")), flow_name)


@pytest.fixture
def loaded_inventory(tmp_path) -> Path:
    """A demo site migrated (assessed, backed up, decrypt-verified, loaded, validated): the state the
    daily reconciliation picks up."""
    folder = tmp_path / "site"
    (folder / "keys").mkdir(parents=True)
    recipient = generate_custodian_identity(folder / "keys" / "alice.age-identity")
    generate_signing_key(folder / "keys" / "signing.key")
    inventory = write_demo_inventory(
        folder, scale=0.05, backup_recipients=[recipient], signing_key=Path("keys/signing.key")
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
    )
    return inventory


@pytest.mark.prefect
@pytest.mark.slow
def test_the_scheduled_reconciliation_runs_with_its_deployed_parameters(loaded_inventory, prefect_server, monkeypatch):
    deployment = _deployment("reconcile-sites")
    assert deployment["schedules"], "reconcile-sites is the scheduled deployment"
    parameters = dict(deployment.get("parameters") or {})
    flow = _flow(deployment["entrypoint"])
    # As on a worker: in the code checkout, the inventory named by the pool's environment.
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("TS24_INVENTORY", str(loaded_inventory))

    results = flow(**parameters)

    assert list(results) == ["demo"] and results["demo"].mode == "baseline"
    assert App(loaded_inventory).control_store.state("demo") == SiteState.RECONCILING


@pytest.mark.prefect
def test_a_run_with_no_inventory_configured_says_where_to_set_it(prefect_server, monkeypatch, tmp_path):
    deployment = _deployment("reconcile-sites")
    monkeypatch.chdir(tmp_path)  # no sites.yaml here
    monkeypatch.delenv("TS24_INVENTORY", raising=False)
    with pytest.raises(ConfigError, match="set TS24_INVENTORY in the work pool's or the worker's environment"):
        _flow(deployment["entrypoint"])(**dict(deployment.get("parameters") or {}))


def test_no_deployment_names_an_inventory_relative_to_the_checkout():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in config["deployments"]:
        assert "inventory" not in (deployment.get("parameters") or {}), deployment["name"]
