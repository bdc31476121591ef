"""Every deployment in prefect.yaml points at a flow that exists, with parameters it accepts."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[1]


def _flow(entrypoint: str) -> Flow:
    file_name, flow_name = entrypoint.split(":")
    module_name = file_name.removesuffix(".py").replace("/", ".")
    module = importlib.import_module(module_name)
    return getattr(module, flow_name)


def test_deployments_point_at_real_flows():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = config["deployments"]
    assert {d["name"] for d in deployments} >= {"migrate-site", "reconcile-sites"}
    for deployment in deployments:
        flow = _flow(deployment["entrypoint"])
        assert isinstance(flow, Flow), deployment["entrypoint"]
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters", {})) <= accepted, deployment["name"]
        for schedule in deployment.get("schedules", []) or []:
            assert schedule.get("cron") or schedule.get("interval"), deployment["name"]
