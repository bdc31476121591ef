"""A reconcile SIGKILLed after its increment is chained, then run again, reaches the uninterrupted verdict.

Before, the run after the kill found the chain already moved on and ran as a delta: the data ended
exact, but "every row compared with the chain" and "every dossier finished and carried over" did
not hold until a later sweep. Now the killed run stays open in the reconcile state until its
verdict is made, and the next run finishes it.

Two twin sites (same seed) are advanced alike; one is reconciled without interruption, the other
in a child process that is killed once its increment is chained: the new system is held locked by
the test, so the child waits at its carry-over, after the commit, when the kill lands.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from test_reconcile_support import SITE, make_site

from reconcile.state import open_runs

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import datetime as dt, json, sys
from pathlib import Path
from ts24_migrate.core.signing import load_signing_key
from reconcile.site_reconcile import reconcile_site
from reconcile.state import ReconcileState
from ts24_migrate.core.db import legacy_engine, store_engine
from ts24_migrate.core.secrets import Secret
a = json.loads(sys.argv[1])
reconcile_site(legacy_engine(Secret(a["legacy"])), store_engine(Secret(a["target"])),
               ReconcileState(store_engine(Secret(a["control"]))), site_id=a["site"], run_id=a["run_id"],
               cutover=dt.date.fromisoformat(a["cutover"]), attachments_dir=Path(a["files"]),
               backup_root=Path(a["backups"]), recipients=[a["recipient"]],
               signing_key=load_signing_key(Path(a["key"])), chunk_rows=200)
print("DONE", flush=True)
"""


def _key_file(site, folder: Path) -> Path:
    """The site's signing key written out as `keys generate` writes one, for the child process."""
    path = folder / "signing.key"
    pem = site.signing._private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return path


def _open_run_id(control: sa.Engine) -> str | None:
    with control.connect() as conn:
        return conn.execute(sa.select(open_runs.c.run_id).where(open_runs.c.site_id == SITE)).scalar()


def _killed_after_its_increment(site, key: Path) -> str:
    run_id = str(uuid.uuid4())
    args = {
        "legacy": str(site.writable.url),
        "target": str(site.target.url),
        "control": str(site.control.url),
        "site": SITE,
        "run_id": run_id,
        "cutover": site.truth.cutover.isoformat(),
        "files": str(site.files),
        "backups": str(site.backups),
        "recipient": site.recipient,
        "key": str(key),
    }
    site.target.dispose()
    blocker = sqlite3.connect(site.target.url.database, isolation_level=None, timeout=60)
    blocker.execute("BEGIN IMMEDIATE")  # the new system takes no write: the child waits at its carry-over
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while child.poll() is None and _open_run_id(site.control) != run_id and time.monotonic() < deadline:
            time.sleep(0.02)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        out, err = child.communicate(timeout=60)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert child.returncode == -signal.SIGKILL and "DONE" not in out, err[-2000:]
    return run_id


_BACKUP_ID = re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{6}")


def _verdict(result) -> dict:
    """The report's verdict, criterion by criterion with its detail (the twins' backup ids aside)."""
    return {
        "mode": result.mode,
        "drained": result.drained,
        "criteria": [(c.name, c.holds, _BACKUP_ID.sub("<backup>", c.detail)) for c in result.criteria],
        "carried": result.carried.carried,
        "blocked": len(result.carried.blocked),
        "in_flight": result.in_flight.count,
        "increment_rows": (result.increment or {}).get("rows"),
        "account": (
            result.account.scope,
            result.account.dossiers,
            result.account.current,
            result.account.rejected,
            len(result.account.drift),
        ),
    }


@pytest.mark.slow
def test_a_reconcile_killed_after_its_increment_is_chained_reaches_the_uninterrupted_verdict(tmp_path, sqlite_url):
    whole = make_site(
        tmp_path / "whole",
        legacy_url=sqlite_url("whole-legacy"),
        target_url=sqlite_url("whole-target"),
        control_url=sqlite_url("whole-control"),
        baseline=False,
    )
    killed = make_site(
        tmp_path / "killed",
        legacy_url=sqlite_url("killed-legacy"),
        target_url=sqlite_url("killed-target"),
        control_url=sqlite_url("killed-control"),
        baseline=False,
    )
    key = _key_file(killed, tmp_path)
    try:
        # First the baseline (it compares every row with the chain), then a delta run.
        for seed, expected_mode in ((1, "baseline"), (2, "delta")):
            whole.advance(days=7, seed=seed)
            killed.advance(days=7, seed=seed)
            expected = whole.reconcile()
            assert expected.mode == expected_mode and expected.increment is not None

            run_id = _killed_after_its_increment(killed, key)
            assert killed.state.open_run(SITE).mode == expected_mode  # chained, no verdict made
            finished = killed.reconcile()
            assert _verdict(finished) == _verdict(expected)
            assert finished.completes_run == run_id
            assert finished.increment["written_by_run"] == run_id  # the killed run's increment, reported once
            assert killed.state.open_run(SITE) is None
            assert len(killed.state.chain(SITE)) == len(whole.state.chain(SITE))
    finally:
        whole.dispose()
        killed.dispose()


@pytest.mark.slow
def test_an_increment_signed_and_never_chained_is_deleted_by_the_next_run(tmp_path, sqlite_url):
    """A run killed between signing its increment and chaining it leaves a complete increment nothing
    refers to; the next run deletes it (a second copy of legacy rows outside the chain otherwise)
    and chains its own in its place."""
    from backups.chain import backup_folder
    from backups.increment import IncrementWriter, increments_dir
    from backups.manifest import read_manifest

    site = make_site(
        tmp_path / "site",
        legacy_url=sqlite_url("legacy"),
        target_url=sqlite_url("target"),
        control_url=sqlite_url("control"),
    )
    try:
        site.advance(days=7, seed=1)
        head = site.state.chain(SITE)[-1]
        # What the killed run left: an increment extending the head, signed (manifest written), not chained.
        orphan = IncrementWriter(
            site.backups,
            SITE,
            parent=read_manifest(backup_folder(site.backups, SITE, head)),
            seq=head.seq + 1,
            run_id=str(uuid.uuid4()),
            recipients=[site.recipient],
            signing_key=site.signing,
            source_dialect="sqlite",
        ).finish()
        assert (increments_dir(site.backups, SITE) / orphan.backup_id).is_dir()

        result = site.reconcile()
        chained = site.state.chain(SITE)
        assert [link.seq for link in chained[-2:]] == [head.seq, head.seq + 1]
        assert chained[-1].backup_id == result.increment["backup_id"] != orphan.backup_id
        assert sorted(p.name for p in increments_dir(site.backups, SITE).iterdir()) == sorted(
            link.backup_id for link in chained if link.kind == "incremental"
        )
    finally:
        site.dispose()
