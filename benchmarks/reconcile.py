"""A reconcile run after 1% of the dossiers changed, next to a full extract of the same site.

A demo TS24 site (SQLite legacy database, attachment folder, SQLite new
system) is generated, loaded, backed up and reconciled once (the chain's
baseline, a one-off). Then 1% of the dossiers change on TS24 (new status,
new NGAY_CAP_NHAT, one new history row each), and in the same run we
measure:

- baseline A, full extract: every table and the attachment folder read into
  Parquet parts in memory (extract.extraction, extract.attachments), what a
  full backup reads;
- baseline B, full backup: backup_site() (extract, encrypt, sign);
- reconcile after 1% changed: delta read, encrypted increment, carry-over
  into the new system, findings, report figures;
- reconcile with nothing changed;

and print each as seconds and as a ratio to the baselines, with the peak
Python heap (tracemalloc, measured in a separate repetition so it does not
slow the timed runs) and the process's peak RSS. What a reconcile run costs
beyond the changed rows: listing the dossiers in flight for the report and
stat-ing every attachment file (a touched file is hashed, the others not).

    python -m benchmarks reconcile                  # scale 40 (about 80,000 dossiers), a few minutes
    python -m benchmarks reconcile --scale 2 --share 0.01
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from backups.backup import backup_site
from extract.attachments import iter_attachment_parts
from extract.discovery import discover_tables
from extract.extraction import iter_table_parts
from load.site_load import load_site
from reconcile.site_reconcile import reconcile_site
from reconcile.state import ReconcileState
from ts24_migrate.core.db import legacy_engine, store_engine
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.legacy.schema import HO_SO, HO_SO_LICH_SU
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import SigningKey
from ts24_migrate.demo import generate_site

SITE = "bench"


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def _peak(action: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _full_extract(legacy: sa.Engine, files: Path, chunk_rows: int) -> int:
    """Every table and every attachment file read into Parquet parts in memory, then dropped."""
    rows = 0
    with legacy.connect() as conn:
        for table in discover_tables(conn):
            for part in iter_table_parts(conn, table, chunk_rows=chunk_rows):
                rows += part.rows
    for _part in iter_attachment_parts(files):
        pass
    return rows


def _change_dossiers(writable: sa.Engine, share: float, seed: int) -> list[int]:
    """`share` of the dossiers change on TS24: status, change time, one history row each."""
    rng = random.Random(seed)
    with writable.connect() as conn:
        ids = sorted(conn.execute(sa.select(HO_SO.c.ID_HO_SO)).scalars())
        moment = conn.execute(sa.select(sa.func.max(HO_SO.c.NGAY_CAP_NHAT))).scalar() + dt.timedelta(hours=1)
        next_history = conn.execute(sa.select(sa.func.max(HO_SO_LICH_SU.c.ID))).scalar() + 1
        statuses = dict(conn.execute(sa.select(HO_SO.c.ID_HO_SO, HO_SO.c.TRANG_THAI)).all())
    chosen = sorted(rng.sample(ids, max(1, round(share * len(ids)))))
    with writable.begin() as conn:
        conn.execute(
            HO_SO.update()
            .where(HO_SO.c.ID_HO_SO == sa.bindparam("b_id"))
            .values(TRANG_THAI=sa.bindparam("b_status"), NGAY_CAP_NHAT=sa.bindparam("b_at")),
            [{"b_id": d, "b_status": 4, "b_at": moment + dt.timedelta(seconds=i)} for i, d in enumerate(chosen)],
        )
        conn.execute(
            HO_SO_LICH_SU.insert(),
            [
                {
                    "ID": next_history + i,
                    "ID_HO_SO": d,
                    "THOI_GIAN": moment + dt.timedelta(seconds=i),
                    "TRANG_THAI_CU": statuses[d],
                    "TRANG_THAI_MOI": 4,
                    "NGUOI_THUC_HIEN": "bench",
                    "NOI_DUNG": None,
                }
                for i, d in enumerate(chosen)
            ],
        )
    return chosen


def run(folder: Path, scale: float, share: float, chunk_rows: int) -> bool:
    legacy_url = f"sqlite:///{folder / 'legacy.sqlite'}"
    writable = sa.create_engine(legacy_url)
    target = store_engine(Secret(f"sqlite:///{folder / 'target.sqlite'}"))
    control = store_engine(Secret(f"sqlite:///{folder / 'control.sqlite'}"))
    files = folder / "files"
    truth, seconds = _timed(lambda: generate_site(writable, files, target=target, seed=42, scale=scale))
    legacy = legacy_engine(Secret(legacy_url))
    dossiers = truth.tables["HO_SO"]["rows"]
    rows = sum(t["rows"] for t in truth.tables.values())
    print(
        f"demo site at scale {scale}: {dossiers:,} dossiers, {rows:,} legacy rows in "
        f"{len(truth.tables)} tables (generated in {seconds:.1f} s)",
        flush=True,
    )
    _, seconds = _timed(
        lambda: load_site(
            legacy,
            target,
            site_id=SITE,
            run_id=str(uuid.uuid4()),
            cutover=truth.cutover,
            attachments_dir=files,
            chunk_rows=chunk_rows,
        )
    )
    print(f"(loaded into the new system in {seconds:.1f} s)", flush=True)

    recipient = generate_custodian_identity(folder / "custodian.age-identity")
    signing = SigningKey.generate()
    state = ReconcileState(control)

    def backup() -> Any:
        return backup_site(
            legacy,
            files,
            folder / "backups",
            site_id=SITE,
            run_id=str(uuid.uuid4()),
            recipients=[recipient],
            signing_key=signing,
            chunk_rows=chunk_rows,
        )

    def reconcile() -> Any:
        return reconcile_site(
            legacy,
            target,
            state,
            site_id=SITE,
            run_id=str(uuid.uuid4()),
            cutover=truth.cutover,
            attachments_dir=files,
            backup_root=folder / "backups",
            recipients=[recipient],
            signing_key=signing,
            chunk_rows=chunk_rows,
            sweep=False,
        )

    extracted, extract_seconds = _timed(lambda: _full_extract(legacy, files, chunk_rows))
    _, backup_seconds = _timed(backup)
    _, baseline_seconds = _timed(reconcile)
    print(f"(first reconciliation, the chain's baseline, one-off: {baseline_seconds:.2f} s)", flush=True)

    changed = _change_dossiers(writable, share, seed=1)
    result, delta_seconds = _timed(reconcile)
    _, idle_seconds = _timed(reconcile)
    picked = sorted(int(k.strip("[]")) for k in result.changed_keys("HO_SO"))
    exact = picked == changed and result.carried.tables.get("HO_SO", {}).get("updated", 0) + result.carried.tables.get(
        "HO_SO", {}
    ).get("rejected", 0) == len(changed)

    # Peak heap, measured on repetitions (tracemalloc slows the code it watches).
    extract_peak = _peak(lambda: _full_extract(legacy, files, chunk_rows))
    _change_dossiers(writable, share, seed=2)
    delta_peak = _peak(reconcile)

    def line(label: str, seconds: float, peak: float | None = None) -> None:
        memory = f"  peak heap {peak:6.1f} MiB" if peak is not None else ""
        print(
            f"{label:<36} {seconds:8.3f} s  {seconds / extract_seconds:6.3f} x full extract  "
            f"{seconds / backup_seconds:6.3f} x full backup{memory}",
            flush=True,
        )

    print(f"chunk rows {chunk_rows}; {len(changed):,} dossiers changed ({share:.1%})")
    line("baseline A: full extract", extract_seconds, extract_peak)
    line("baseline B: full backup (encrypted)", backup_seconds)
    line(f"reconcile after {share:.0%} changed", delta_seconds, delta_peak)
    line("reconcile, nothing changed", idle_seconds)
    print(
        f"full extract read {extracted:,} rows; the reconcile read "
        f"{sum(t['rows_read'] for t in result.tables.values()):,} rows and backed up {result.rows_changed:,}; "
        f"it picked up exactly the changed dossiers: {'yes' if exact else 'NO'}"
    )
    print(
        f"every run also lists the {result.in_flight.count:,} dossiers in flight and stats the "
        f"{result.files['live_files']:,} attachment files (the demo site is at its cut-over: about a quarter "
        f"of its dossiers are in flight; a site with years of history has far fewer)"
    )
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for engine in (writable, legacy, target, control):
        engine.dispose()
    return exact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks reconcile", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=40.0, help="demo scale (1.0 is about 2,000 dossiers)")
    parser.add_argument("--share", type=float, default=0.01, help="share of the dossiers that change")
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ts24-bench-reconcile-") as folder:
        return 0 if run(Path(folder), args.scale, args.share, args.chunk_rows) else 1
