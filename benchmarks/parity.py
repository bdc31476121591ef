"""Parity diff time on a 1M-row table, next to a plain COUNT(*) of the same tables.

Builds a fresh database holding `dossiers` (ROWS rows, source 'ts24') and the
crosswalk rows (with their lineage) the load would have written for them, then measures in the same run:

- baseline: COUNT(*) of the target table plus COUNT(*) of its lineage rows
- parity with no difference (one checksum scan per side)
- parity after 0.1% of the rows were deleted, changed or added behind the
  pipeline's back (bisection down to the exact keys)

and prints each as seconds and as a ratio to the baseline, with the ranges
checked, the rows fetched to Python, and the peak Python heap (tracemalloc)
and process RSS.

    python -m benchmarks parity                        # PostgreSQL, 1,000,000 rows
    python -m benchmarks parity --rows 200000 --dialect sqlite
    TS24_BENCH_PG_URL=postgresql+psycopg://postgres@db/postgres python -m benchmarks parity
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import statistics
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import sqlalchemy as sa

from load import target_schema as ts
from load.bookkeeping import create_bookkeeping_tables, crosswalk
from load.row_hash import register_sqlite_functions, row_md5
from load.target_map import target_spec
from validation.parity import parity_for_table

SITE = "bench-01"
NOW = dt.datetime(2025, 7, 1, 8, 0, 0)
PG_ADMIN_URL = os.environ.get("TS24_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _populate(engine: sa.Engine, rows: int) -> None:
    """dossiers 1..rows and their lineage, generated inside the database."""
    ts.create_business_tables(engine)
    create_bookkeeping_tables(engine)
    d = ts.dossiers
    if engine.dialect.name == "postgresql":
        series = sa.func.generate_series(1, rows).table_valued("i").render_derived()
        i = series.c.i
    else:  # a recursive CTE: SQLite has no generate_series by default
        seq = sa.select(sa.literal(1).label("i")).cte("seq", recursive=True)
        seq = seq.union_all(sa.select(seq.c.i + 1).where(seq.c.i < rows))
        series, i = seq, seq.c.i
    text_i = sa.cast(i, sa.String)
    statuses = sa.case(*[(i % 7 == n, status) for n, status in enumerate(ts.DOSSIER_STATUSES)])
    generated = sa.select(
        i,
        sa.literal("D").concat(text_i),
        sa.literal("TS01").concat(sa.cast(i % 5000, sa.String)),
        sa.literal("600"),
        sa.literal("2024-01"),
        sa.literal(NOW, sa.DateTime),
        statuses,
        sa.literal("cb01"),
        sa.literal("ts24"),
        sa.literal(NOW, sa.DateTime),
    ).select_from(series)
    spec = target_spec("dossiers")
    with engine.begin() as conn:
        conn.execute(
            d.insert().from_select(
                [
                    "dossier_id",
                    "dossier_no",
                    "unit_code",
                    "procedure_code",
                    "declaration_period",
                    "submitted_at",
                    "status",
                    "officer",
                    "source",
                    "updated_at",
                ],
                generated,
            )
        )
        written = sa.select(
            sa.literal("dossiers"),
            sa.cast(d.c.dossier_id, sa.String),
            sa.literal(SITE),
            sa.literal("HO_SO"),
            sa.cast(d.c.dossier_id, sa.String),
            sa.literal(str(uuid.UUID(int=1))),
            sa.literal("0" * 64),
            row_md5(engine.dialect.name, spec.hashed_columns()),
            sa.literal(NOW, sa.DateTime),
        )
        conn.execute(
            crosswalk.insert().from_select(
                [
                    "target_table",
                    "target_key",
                    "site_id",
                    "legacy_table",
                    "legacy_key",
                    "run_id",
                    "legacy_row_hash",
                    "row_md5",
                    "loaded_at",
                ],
                written,
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))


def _tamper(engine: sa.Engine, rows: int, share: float, seed: int = 7) -> dict[str, int]:
    """Delete, change and add `share` of the rows in equal thirds, in the target only."""
    rng = random.Random(seed)
    touched = rng.sample(range(1, rows + 1), max(3, int(rows * share)))
    third = len(touched) // 3
    deleted, changed = touched[:third], touched[third : 2 * third]
    added = len(touched) - 2 * third
    d = ts.dossiers
    with engine.begin() as conn:
        for i in range(0, len(deleted), 1000):
            conn.execute(d.delete().where(d.c.dossier_id.in_(deleted[i : i + 1000])))
        for i in range(0, len(changed), 1000):
            conn.execute(d.update().where(d.c.dossier_id.in_(changed[i : i + 1000])).values(notes="edited"))
        conn.execute(
            d.insert(),
            [
                {
                    "dossier_id": rows + 1 + n * 17,
                    "dossier_no": f"X{n}",
                    "unit_code": "TS01",
                    "procedure_code": "600",
                    "submitted_at": NOW,
                    "status": "done",
                    "source": "ts24",
                    "updated_at": NOW,
                }
                for n in range(added)
            ],
        )
    return {"missing": len(deleted), "changed": len(changed), "extra": added}


def _baseline(engine: sa.Engine) -> float:
    count_target = sa.select(sa.func.count()).select_from(ts.dossiers)
    count_lineage = (
        sa.select(sa.func.count())
        .select_from(crosswalk)
        .where(crosswalk.c.target_table == "dossiers", crosswalk.c.site_id == SITE)
    )
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(count_target).scalar_one()
        conn.execute(count_lineage).scalar_one()
    return time.perf_counter() - started


def _median_seconds(measure, repeats: int) -> float:
    return statistics.median(measure() for _ in range(repeats))


def _timed_parity(engine: sa.Engine, repeats: int):
    """Median seconds over `repeats` runs, then one more run under tracemalloc for the peak heap."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        parity_for_table(engine, "dossiers", site_id=SITE)
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()  # slows allocation-heavy code, hence not during the timed runs
    result = parity_for_table(engine, "dossiers", site_id=SITE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, statistics.median(seconds), peak


def _report(label: str, seconds: float, baseline: float, extra: str = "") -> None:
    print(f"{label:<34} {seconds:8.3f} s  {seconds / baseline:7.1f} x COUNT(*)  {extra}", flush=True)


def run(engine: sa.Engine, rows: int, repeats: int) -> bool:
    print(f"{engine.dialect.name}, {rows:,} rows in dossiers and in its lineage; median of {repeats} runs")
    started = time.perf_counter()
    _populate(engine, rows)
    print(f"(populated in {time.perf_counter() - started:.1f} s)")
    _baseline(engine)  # warm the cache, as the parity runs below will find it
    baseline = _median_seconds(lambda: _baseline(engine), repeats)
    _report("baseline: COUNT(*) target+lineage", baseline, baseline)

    clean, seconds, peak = _timed_parity(engine, repeats)
    _report(
        "parity, no difference",
        seconds,
        baseline,
        f"ranges {clean.ranges_checked}, fetched {clean.rows_fetched}, peak heap {peak / 2**20:.1f} MiB",
    )
    ok = clean.exact

    planted = _tamper(engine, rows, 0.001)
    dirty, seconds, peak = _timed_parity(engine, repeats)
    found = {"missing": len(dirty.missing), "changed": len(dirty.changed), "extra": len(dirty.extra)}
    _report(
        "parity, 0.1% rows differ",
        seconds,
        baseline,
        f"ranges {dirty.ranges_checked}, fetched {dirty.rows_fetched}, peak heap {peak / 2**20:.1f} MiB",
    )
    print(f"planted {planted}, found {found}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return ok and found == planted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks parity", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dialect", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.dialect == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            engine = sa.create_engine(f"sqlite:///{Path(folder) / 'bench.sqlite'}")
            register_sqlite_functions(engine)
            try:
                return 0 if run(engine, args.rows, args.repeats) else 1
            finally:
                engine.dispose()
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"ts24_bench_{uuid.uuid4().hex[:12]}"
    preparer = admin.dialect.identifier_preparer
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {preparer.quote(name)}"))
    engine = sa.create_engine(sa.engine.make_url(PG_ADMIN_URL).set(database=name))
    try:
        return 0 if run(engine, args.rows, args.repeats) else 1
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {preparer.quote(name)} WITH (FORCE)"))
        admin.dispose()
