"""A load killed for real (SIGKILL, twice) and re-run ends exactly where an uninterrupted load does."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_load_support import demo_inventory, open_target, raw_tables, snapshot

from load import bookkeeping as bk
from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import ControlStore
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.legacy.schema import MAPPED_TABLES

CHUNK_ROWS = 12
_CLI = "import sys; from ts24_migrate.cli.main import run; sys.argv[0] = 'ts24-migrate'; run()"


def _load_command(inventory: Path) -> list[str]:
    return [sys.executable, "-c", _CLI, "-i", str(inventory), "--json", "load", "demo", "--chunk-rows", str(CHUNK_ROWS)]


def _ledger_chunks(target: sa.Engine) -> int:
    with target.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(bk.load_ledger)).scalar_one()


def _load_killed_after(inventory: Path, target: sa.Engine, chunks: int) -> int:
    """Start a load, SIGKILL it once the ledger holds `chunks` chunks; returns the chunks it left."""
    process = subprocess.Popen(_load_command(inventory), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while process.poll() is None and _ledger_chunks(target) < chunks:
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        _, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the load ended before the kill: {err.decode()[-500:]}"
    return _ledger_chunks(target)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target_urls(request, sqlite_url):
    if request.param == "sqlite":
        return sqlite_url("killed"), sqlite_url("uninterrupted")
    make = request.getfixturevalue("pg_database")
    return make(), make()


@pytest.mark.slow
def test_killed_twice_then_rerun_equals_an_uninterrupted_load(tmp_path, target_urls):
    killed_url, uninterrupted_url = target_urls
    inventory, truth = demo_inventory(tmp_path / "killed", killed_url)
    reference_inventory, _ = demo_inventory(tmp_path / "uninterrupted", uninterrupted_url)
    killed, uninterrupted = open_target(killed_url), open_target(uninterrupted_url)
    chunks = {t: math.ceil(truth.tables[t]["rows"] / CHUNK_ROWS) for t in MAPPED_TABLES}
    total = sum(chunks.values())
    # First kill early in the dossiers: units and persons are done, so the resumed run must give the
    # transform what they accepted (including the units in conflict, which were not loaded).
    first_kill = chunks["DM_COQUAN_BHXH"] + chunks["DM_DONVI"] + chunks["NGUOI_LAO_DONG"] + 1
    second_kill = total - chunks["HO_SO_LICH_SU"] // 2  # then halfway through the history

    left = _load_killed_after(inventory, killed, first_kill)
    assert first_kill <= left < total
    left_again = _load_killed_after(inventory, killed, second_kill)
    assert left < left_again < total
    finished = subprocess.run(_load_command(inventory), capture_output=True, timeout=300)
    assert finished.returncode == 0, finished.stderr.decode()[-1000:]
    summary = json.loads(finished.stdout)
    assert summary["chunks_skipped"] == left_again and summary["accounting_ok"]

    reference = subprocess.run(_load_command(reference_inventory), capture_output=True, timeout=300)
    assert reference.returncode == 0, reference.stderr.decode()[-1000:]
    assert json.loads(reference.stdout)["tables"] == summary["tables"]

    expected, actual = snapshot(uninterrupted), snapshot(killed)
    for table in expected:
        assert actual[table] == expected[table], table
    if killed.dialect.name == "sqlite":
        # SQLite allocates keys inside the transaction: even the key numbers are the same.
        assert raw_tables(killed) == raw_tables(uninterrupted)
    # The two kills were real: their runs never finished, and the next run marked them abandoned.
    store = ControlStore(store_engine(load_inventory(inventory).control_store_url()))
    runs = store.runs("demo", "load")
    assert [r.outcome for r in runs] == ["abandoned", "abandoned", "succeeded"]
    assert all(r.abandoned_at is not None and r.finished_at is None for r in runs[:2])
