"""The merge of history chunks with and without PostgreSQL's per-row foreign-key checks, side by side.

Two fresh PostgreSQL databases hold the same dossiers: one is loaded by the
superuser the run connects as, so load.foreign_keys takes the replica path
(the set-based parent check only); the other by a role made here that may not
set session_replication_role, so PostgreSQL checks each row's dossier again.
The same history chunks are merged into both, in turns (which goes first
alternates), and the median time per chunk is printed with the ratio.
Nothing but the merge is timed: no reading or transform, which in a whole
load (`python -m benchmarks load`) are most of the noise on a shared machine.

    python -m benchmarks merge_foreign_keys                    # 6 chunks of 50,000 rows
    python -m benchmarks merge_foreign_keys --chunks 10 --chunk-rows 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import statistics
import sys
import time
import uuid
from typing import Any

import pandas as pd
import sqlalchemy as sa

from benchmarks.load import DEFAULT_ADMIN_URL

CUTOVER = dt.date(2025, 7, 1)
NOW = dt.datetime(2025, 8, 1)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows).astype(object)
    frame["legacy_row_hash"] = [hashlib.sha256(k.encode()).hexdigest() for k in frame["legacy_key"]]
    return frame


def _dossiers(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "dossier_no": f"HS-{i:07d}",
            "unit_code": "DV001",
            "procedure_code": "600",
            "declaration_period": "2025-05",
            "submitted_at": dt.datetime(2025, 5, 2, 9, 30),
            "received_at": None,
            "due_date": None,
            "returned_at": None,
            "status": "received",
            "office_code": "0101",
            "officer": None,
            "result_no": None,
            "notes": None,
            "dq_flags": None,
            "updated_at": dt.datetime(2025, 5, 2, 9, 30),
            "legacy_key": str(i),
        }
        for i in range(first, first + count)
    ]


def _history(first: int, count: int, dossiers: int) -> list[dict[str, Any]]:
    return [
        {
            "occurred_at": dt.datetime(2025, 1, 1) + dt.timedelta(minutes=i),
            "status_from": "received",
            "status_to": "processing",
            "actor": "cb",
            "note": None,
            "dq_flags": None,
            "legacy_key": str(first + i),
            "legacy_dossier_id": str(1 + i % dossiers),  # about four history rows per dossier, as in TS24
        }
        for i in range(count)
    ]


def _merge(engine: sa.Engine, table: str, legacy_table: str, rows: list[dict[str, Any]]) -> tuple[float, Any]:
    from load.merge import merge_chunk
    from load.staging import to_stage_arrow
    from load.target_map import target_spec
    from load.transactions import write_transaction

    spec = target_spec(table)
    staged, unstorable = to_stage_arrow(_frame(rows), spec)
    assert not unstorable
    start = time.perf_counter()
    with write_transaction(engine) as conn:
        outcome = merge_chunk(
            conn,
            spec,
            staged,
            legacy_table=legacy_table,
            site_id="bench",
            run_id=str(uuid.uuid4()),
            cutover=CUTOVER,
            now=NOW,
            may_be_loaded=False,
        )
    return time.perf_counter() - start, outcome


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks merge_foreign_keys", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--chunks", type=int, default=6, help="history chunks merged into each database")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--pg-admin-url", default=os.environ.get("TS24_BENCH_PG_URL", DEFAULT_ADMIN_URL))
    options = parser.parse_args(args)
    from load.schema_version import prepare_target
    from ts24_migrate.core.db import store_engine
    from ts24_migrate.core.secrets import Secret

    admin = sa.create_engine(options.pg_admin_url, isolation_level="AUTOCOMMIT")
    role, databases, engines = f"ts24_bench_{uuid.uuid4().hex[:10]}", [], {}
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER'))
            for owner in (None, role):
                name = f"ts24_bench_{uuid.uuid4().hex[:10]}"
                conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else "")))
                databases.append(name)
                url = admin.url.set(database=name, username=owner or admin.url.username)
                engines["per-row" if owner else "replica"] = store_engine(
                    Secret(url.render_as_string(hide_password=False))
                )
        dossiers = max(1, options.chunk_rows // 4)
        for engine in engines.values():
            prepare_target(engine)
            for first in range(1, dossiers + 1, 10_000):
                _merge(engine, "dossiers", "HO_SO", _dossiers(first, min(10_000, dossiers + 1 - first)))
        times: dict[str, list[float]] = {kind: [] for kind in engines}
        paths: dict[str, Any] = {}
        for chunk in range(options.chunks):
            rows = _history(chunk * options.chunk_rows, options.chunk_rows, dossiers)
            for kind in list(engines) if chunk % 2 == 0 else list(engines)[::-1]:
                seconds, outcome = _merge(engines[kind], "dossier_history", "HO_SO_LICH_SU", rows)
                if outcome.loaded != options.chunk_rows:
                    raise RuntimeError(f"{kind}: {outcome.loaded} of {options.chunk_rows} history rows loaded")
                times[kind].append(seconds)
                paths[kind] = outcome.foreign_key_checks
        print(f"{options.chunks} history chunks of {options.chunk_rows:,} rows ({dossiers:,} dossiers), merge only:")
        for kind, measured in times.items():
            print(
                f"  {kind:<8} path {paths[kind]!r:<26} median {statistics.median(measured):6.3f} s  "
                f"({', '.join(f'{s:.2f}' for s in measured)})"
            )
        ratio = statistics.median(times["per-row"]) / statistics.median(times["replica"])
        saved = statistics.median(times["per-row"]) - statistics.median(times["replica"])
        print(f"  per-row / replica: {ratio:.2f}x ({saved * 1e6 / options.chunk_rows:.1f} us a row)")
    finally:
        for engine in engines.values():
            engine.dispose()
        with admin.connect() as conn:
            for name in databases:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
