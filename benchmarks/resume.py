"""What a resumed load costs: a load SIGKILLed at 80% and re-run, against an uninterrupted load.

For each target (PostgreSQL and SQLite) a demo TS24 site is generated once
(SQLite legacy database, attachments, the new system's side in the target),
its target copied, then in fresh child processes:

- uninterrupted: load_site() on one copy, start to end;
- killed:        load_site() on the other copy, SIGKILLed once the load ledger
                 holds 80% of the legacy rows (`--kill-at`);
- re-run:        load_site() again on the killed copy: it skips the chunks in the
                 ledger, rebuilds what the transform remembers from the target,
                 and loads the rest.

Printed: each time, and the re-run's as a ratio to the uninterrupted load's.
A resume should cost no more than the work left (20% of the rows) plus a small
fixed part: the goal is a ratio of 0.5x or less. Both loads must end with the
same figures (checked).

    python -m benchmarks resume                       # scale 20, PostgreSQL and SQLite
    python -m benchmarks resume --scales 6 --targets sqlite --chunk-rows 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.load import DEFAULT_ADMIN_URL, _Databases

CUTOVER = dt.date(2025, 7, 1)
_REPO = Path(__file__).resolve().parent.parent


def _child_load(legacy_url: str, target_url: str, files: str, chunk_rows: int) -> dict[str, Any]:
    import uuid

    from load.site_load import load_site
    from ts24_migrate.core.db import legacy_engine, store_engine
    from ts24_migrate.core.secrets import Secret

    legacy, target = legacy_engine(Secret(legacy_url)), store_engine(Secret(target_url))
    start = time.perf_counter()
    summary = load_site(
        legacy,
        target,
        site_id="bench",
        run_id=str(uuid.uuid4()),
        cutover=CUTOVER,
        attachments_dir=Path(files),
        chunk_rows=chunk_rows,
    )
    return {
        "seconds": time.perf_counter() - start,
        "accounting_ok": summary.accounting_ok,
        "chunks_loaded": summary.chunks_loaded,
        "chunks_skipped": summary.chunks_skipped,
        "tables": {
            name: {k: t[k] for k in ("source_rows", "loaded", "rejected", "conflicts")}
            for name, t in summary.tables.items()
        },
    }


def _command(*args: Any) -> list[str]:
    code = (
        "import json, sys; from benchmarks.resume import _child_load; "
        "print(json.dumps(_child_load(*json.loads(sys.argv[1]))))"
    )
    return [sys.executable, "-c", code, json.dumps(args)]


def _run(*args: Any) -> dict[str, Any]:
    done = subprocess.run(_command(*args), capture_output=True, text=True, cwd=_REPO)
    if done.returncode != 0:
        raise RuntimeError(f"load failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rows_in_ledger(target: sa.Engine) -> int:
    from load.bookkeeping import load_ledger

    try:
        with target.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(load_ledger.c.rows_in), 0))).scalar_one())
    except sa.exc.DBAPIError:  # the tables are not created yet, or SQLite is busy for a moment
        return 0


def _run_killed(rows_to_kill_at: int, *args: Any) -> int:
    """Start a load, SIGKILL it once the ledger holds `rows_to_kill_at` rows; returns the rows it left."""
    target = sa.create_engine(args[1])
    process = subprocess.Popen(_command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=_REPO)
    try:
        while process.poll() is None and _rows_in_ledger(target) < rows_to_kill_at:
            time.sleep(0.02)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        _, err = process.communicate(timeout=120)
        if process.returncode != -signal.SIGKILL:
            raise RuntimeError(f"the load ended before the kill: {err.decode()[-1000:]}")
        return _rows_in_ledger(target)
    finally:
        target.dispose()


def _legacy_rows(legacy_url: str) -> int:
    from ts24_migrate.core.legacy.schema import MAPPED_TABLES

    legacy = sa.create_engine(legacy_url)
    with legacy.connect() as conn:
        total = sum(
            conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one() for name in MAPPED_TABLES
        )
    legacy.dispose()
    return total


def run_target(
    kind: str, scale: float, chunk_rows: int, kill_at: float, databases: _Databases | None, work: Path
) -> dict[str, Any]:
    from ts24_migrate.demo import generate_site

    folder = work / f"{kind}-scale-{scale:g}"
    folder.mkdir(parents=True)
    legacy_url = f"sqlite:///{folder / 'legacy.sqlite'}"
    if kind == "postgresql":
        assert databases is not None
        first = databases.make()
    else:
        first = f"sqlite:///{folder / 'target-uninterrupted.sqlite'}"
    legacy, target = sa.create_engine(legacy_url), sa.create_engine(first)
    print(f"-- {kind}, scale {scale:g}: generating the demo site ...", flush=True)
    generate_site(legacy, folder / "files", target=target, seed=42, scale=scale, cutover=CUTOVER)
    legacy.dispose()
    target.dispose()
    if kind == "postgresql":
        assert databases is not None
        second = databases.make(copy_of=first)
    else:
        shutil.copyfile(folder / "target-uninterrupted.sqlite", folder / "target-killed.sqlite")
        second = f"sqlite:///{folder / 'target-killed.sqlite'}"
    files = str(folder / "files")
    total = _legacy_rows(legacy_url)
    uninterrupted = _run(legacy_url, first, files, chunk_rows)
    left = _run_killed(int(total * kill_at), legacy_url, second, files, chunk_rows)
    rerun = _run(legacy_url, second, files, chunk_rows)
    if not (uninterrupted["accounting_ok"] and rerun["accounting_ok"]) or uninterrupted["tables"] != rerun["tables"]:
        raise RuntimeError("the resumed load does not end with the uninterrupted load's figures")
    return {"rows": total, "rows_done_at_kill": left, "uninterrupted": uninterrupted, "rerun": rerun}


def report(kind: str, scale: float, result: dict[str, Any]) -> str:
    whole, rerun = result["uninterrupted"]["seconds"], result["rerun"]["seconds"]
    done = result["rows_done_at_kill"] / result["rows"]
    chunks = result["rerun"]["chunks_loaded"] + result["rerun"]["chunks_skipped"]
    return "\n".join(
        [
            f"{kind}, scale {scale:g}: {result['rows']:,} legacy rows, {chunks} chunks",
            f"  uninterrupted load                  {whole:8.2f} s",
            f"  killed with {done:5.1%} of the rows loaded ({result['rerun']['chunks_skipped']} chunks)",
            f"  re-run (resume)                     {rerun:8.2f} s   {rerun / whole:5.2f}x the uninterrupted load "
            f"(work left {1 - done:.0%}; goal <= 0.50x)",
        ]
    )


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks resume", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="20", help="demo scales (1.0 = 2,000 dossiers), comma-separated")
    parser.add_argument("--targets", default="postgresql,sqlite", help="postgresql, sqlite or both")
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=10_000,
        help="rows per chunk: small enough that 80%% falls inside the largest table",
    )
    parser.add_argument("--kill-at", type=float, default=0.8, help="share of the legacy rows loaded at the kill")
    parser.add_argument("--pg-admin-url", default=os.environ.get("TS24_BENCH_PG_URL", DEFAULT_ADMIN_URL))
    options = parser.parse_args(args)
    targets = [t.strip() for t in options.targets.split(",") if t.strip()]
    databases = _Databases(options.pg_admin_url) if "postgresql" in targets else None
    try:
        with tempfile.TemporaryDirectory(prefix="ts24-bench-resume-") as work:
            for scale in (float(s) for s in options.scales.split(",")):
                for kind in targets:
                    result = run_target(kind, scale, options.chunk_rows, options.kill_at, databases, Path(work))
                    print(report(kind, scale, result), flush=True)
    finally:
        if databases is not None:
            databases.drop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
