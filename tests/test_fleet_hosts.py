"""What workers on several hosts rely on: each enters its own checkout, the lease is configurable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from flows.checkout import enter_checkout
from flows.limits import DEFAULT_LEASE_SECONDS, lease_seconds
from ts24_migrate.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_the_pull_step_enters_the_workers_own_checkout(tmp_path, monkeypatch):
    steps = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["pull"]
    assert steps == [{"flows.checkout.enter_checkout": {}}]  # nothing of the deploying host's paths
    here = Path.cwd()
    try:
        monkeypatch.delenv("TS24_MIGRATE_HOME", raising=False)
        monkeypatch.chdir(tmp_path)
        assert enter_checkout() == {"directory": str(ROOT)} and Path.cwd() == ROOT  # the installed checkout
        copy = tmp_path / "elsewhere"
        (copy / "flows").mkdir(parents=True)
        (copy / "flows" / "migrate_site.py").write_text("", encoding="utf-8")
        monkeypatch.setenv("TS24_MIGRATE_HOME", str(copy))
        assert enter_checkout() == {"directory": str(copy)} and Path.cwd() == copy
        monkeypatch.setenv("TS24_MIGRATE_HOME", str(tmp_path / "nothing"))
        with pytest.raises(ConfigError, match=r"TS24_MIGRATE_HOME=.*nothing is not a checkout of ts24-migrate"):
            enter_checkout()
    finally:
        os.chdir(here)


def test_the_lease_comes_from_the_workers_environment(monkeypatch):
    monkeypatch.delenv("TS24_SLOT_LEASE_SECONDS", raising=False)
    assert lease_seconds() == DEFAULT_LEASE_SECONDS == 300
    monkeypatch.setenv("TS24_SLOT_LEASE_SECONDS", "90")
    assert lease_seconds() == 90
    for bad in ("30", "1m", "-5"):
        monkeypatch.setenv("TS24_SLOT_LEASE_SECONDS", bad)
        with pytest.raises(ConfigError, match="at least 60"):
            lease_seconds()
