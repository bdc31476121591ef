"""Load throughput and memory on PostgreSQL, next to a naive migration and the COPY floor.

For each scale a demo TS24 site is generated (SQLite legacy database,
attachments, and the new system's side in a fresh PostgreSQL database), then
fresh child processes measure, in the same run, on the same legacy rows of
the six mapped tables:

- load:       load_site(): read in key order, transform, binary COPY into
              staging, merge with crosswalk and lineage (row hash), rejects and
              ledger, one transaction per chunk; as the superuser the run
              connects as, so the files and history skip the per-row
              foreign-key checks after the set-based one (load.foreign_keys)
- load, per-row FK checks: the same load into a copy of the same target owned
              by a role that may not set session_replication_role: the
              fallback path, where PostgreSQL checks each row's key again
- transform:  only the read + transform part of it (no target), to show how
              much of the load's time is the transform's
- naive:      pandas.read_sql + DataFrame.to_sql per table (no transform, no
              bookkeeping, the whole table in memory)
- pgloader:   pgloader (Debian package) copying the same six tables from the
              SQLite file into a fresh database: the usual tool for this job, with
              no transform and no bookkeeping
- psql copy:  `psql \\copy` of the same rows from CSV files prepared beforehand
              (untimed): the floor, PostgreSQL's own bulk path
- writes:     the floor of what the load is asked to write, whoever writes it:
              the rows the load wrote (business rows with the new system's keys,
              unique and foreign keys; a crosswalk row per row, with its lineage), inserted by
              PostgreSQL alone from tables in the same database prepared
              beforehand (untimed). No reading, transform, staging or decision,
              and the row hashes are copied rather than computed: a lower
              bound for any tool that keeps this lineage in this schema
- the same floor, on copies of that database, for designs the issue does not
  allow, to show what each requirement costs: without the new system's foreign
  keys during the migration; and the business rows alone without foreign
  keys, which is what pgloader writes (plus the new keys)

Each child reports its wall time and its own peak RSS (for psql copy and
pgloader: that program's).
Printed: rows/s, peak memory, and each time as a ratio to the load's. The
load's memory should stay flat from the small scale to the large one (it is
bounded by --chunk-rows); the naive one grows with the tables.

    python -m benchmarks load                  # scales 20 and 80, chunks of 50,000 rows (the load's default)
    python -m benchmarks load --scales 100,500   # up to 1M dossier rows
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

CUTOVER = dt.date(2025, 7, 1)
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# -- the measured children ------------------------------------------------------------------------
def _child_load(legacy_url: str, target_url: str, files: str, chunk_rows: int) -> dict[str, Any]:
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
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": sum(t["source_rows"] for t in summary.tables.values()),
        "loaded": sum(t["loaded"] for t in summary.tables.values()),
        "accounting_ok": summary.accounting_ok,
        "foreign_key_checks": dict(summary.foreign_key_checks),
    }


def _child_transform(legacy_url: str, files: str, chunk_rows: int) -> dict[str, Any]:
    from extract.reader import iter_table_rows, read_batch
    from load.interpreter import fewer_collections
    from load.site_load import mapped_legacy_tables
    from transform import TransformContext, transform_batch
    from ts24_migrate.core.db import legacy_engine
    from ts24_migrate.core.secrets import Secret

    legacy = legacy_engine(Secret(legacy_url))
    ctx = TransformContext("bench", cutover=CUTOVER, attachments_dir=Path(files), reference_date=dt.date.today())
    start, rows = time.perf_counter(), 0
    with legacy.connect() as conn, fewer_collections():  # as load_site runs it
        for info in mapped_legacy_tables(conn, "bench"):
            for chunk in iter_table_rows(conn, info, chunk_rows=chunk_rows):
                transform_batch(info.name, read_batch(info, chunk, None), ctx)
                rows += len(chunk)
    return {"seconds": time.perf_counter() - start, "rows": rows}


def _child_naive(legacy_url: str, target_url: str) -> dict[str, Any]:
    import pandas as pd

    from ts24_migrate.core.legacy.schema import MAPPED_TABLES

    legacy, target = sa.create_engine(legacy_url), sa.create_engine(target_url)
    start, rows = time.perf_counter(), 0
    for name in MAPPED_TABLES:
        frame = pd.read_sql_table(name, legacy)
        frame.to_sql(name.lower(), target, index=False)
        rows += len(frame)
    return {"seconds": time.perf_counter() - start, "rows": rows}


def _child_psql_copy(psql_url: str, csv_dir: str) -> dict[str, Any]:
    from ts24_migrate.core.legacy.schema import MAPPED_TABLES

    start = time.perf_counter()
    for name in MAPPED_TABLES:
        command = f"\\copy \"{name}\" FROM '{Path(csv_dir) / (name + '.csv')}' WITH (FORMAT csv)"
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", psql_url, "-c", command], check=True)
    seconds = time.perf_counter() - start
    rows = sum(sum(1 for _ in open(Path(csv_dir) / (name + ".csv"), "rb")) for name in MAPPED_TABLES)
    return {"seconds": seconds, "rows": rows, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _child_pgloader(legacy_path: str, target_url: str, work_dir: str) -> dict[str, Any]:
    from ts24_migrate.core.legacy.schema import MAPPED_TABLES

    tables = ", ".join(f"'{name}'" for name in MAPPED_TABLES)
    command = Path(work_dir) / "pgloader.load"
    command.write_text(
        f"LOAD DATABASE FROM sqlite://{legacy_path} INTO {target_url}\n"
        "  WITH create tables, create indexes, reset sequences\n"
        f"  INCLUDING ONLY TABLE NAMES LIKE {tables};\n",
        encoding="utf-8",
    )
    start = time.perf_counter()
    done = subprocess.run(["pgloader", "--quiet", "--root-dir", work_dir, str(command)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"pgloader failed: {(done.stdout + done.stderr)[-2000:]}")
    engine = sa.create_engine(_sqlalchemy_url(target_url))
    with engine.connect() as conn:  # what pgloader reports is not checked: count what arrived
        rows = sum(
            conn.execute(sa.text(f'SELECT count(*) FROM "{name.lower()}"')).scalar_one() for name in MAPPED_TABLES
        )
    engine.dispose()
    return {"seconds": seconds, "rows": rows, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _child_required_writes(writes_url: str, tables: list[str]) -> dict[str, Any]:
    engine = sa.create_engine(writes_url)
    start, rows = time.perf_counter(), 0
    for name in tables:  # parents first, one transaction per table like the load's chunks
        with engine.begin() as conn:
            written = conn.execute(sa.text(f"INSERT INTO {name} SELECT * FROM {_SOURCE_PREFIX}{name}")).rowcount
        rows += written if name in _BUSINESS_TABLES else 0  # rows/s counts the legacy rows, as for the others
    seconds = time.perf_counter() - start
    engine.dispose()
    return {"seconds": seconds, "rows": rows}


_CHILDREN = {
    "load": _child_load,
    "load_per_row": _child_load,
    "transform": _child_transform,
    "naive": _child_naive,
    "pgloader": _child_pgloader,
    "psql_copy": _child_psql_copy,
    "writes": _child_required_writes,
}


def _measure(kind: str, *args: Any) -> dict[str, Any]:
    """Run one child in a fresh interpreter; its peak RSS is its own."""
    code = (
        "import json, resource, sys; from benchmarks.load import _CHILDREN; "
        "r = _CHILDREN[sys.argv[1]](*json.loads(sys.argv[2])); "
        "r.setdefault('peak_mb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); "
        "print(json.dumps(r))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, kind, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- preparation (untimed) ------------------------------------------------------------------------
def _csv_field(value: Any) -> str:
    """One CSV field as PostgreSQL's CSV format reads it (unquoted empty is NULL)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return '"' + str(value).replace('"', '""') + '"'


def _prepare_copy_floor(legacy: sa.Engine, floor_url: str, csv_dir: Path) -> None:
    from ts24_migrate.core.legacy.schema import MAPPED_TABLES, metadata

    floor = sa.create_engine(floor_url)
    metadata.create_all(floor, tables=[metadata.tables[n] for n in MAPPED_TABLES])
    floor.dispose()
    csv_dir.mkdir(parents=True, exist_ok=True)
    with legacy.connect() as conn:
        for name in MAPPED_TABLES:
            with open(csv_dir / f"{name}.csv", "w", encoding="utf-8", newline="") as out:
                result = conn.execution_options(stream_results=True).execute(sa.select(metadata.tables[name]))
                for part in result.partitions(10_000):
                    out.writelines(",".join(_csv_field(v) for v in row) + "\n" for row in part)


_BUSINESS_TABLES = ("offices", "units", "insured_persons", "dossiers", "dossier_files", "dossier_history")
_WRITTEN_TABLES = (*_BUSINESS_TABLES, "mig_crosswalk")
_SOURCE_PREFIX = "bench_source_"

# The required writes, then the same without what a requirement adds: (kind, tables written, keep the FKs).
_WRITES_VARIANTS = (
    ("writes", _WRITTEN_TABLES, True),
    ("writes_no_fk", _WRITTEN_TABLES, False),
    ("writes_business", _BUSINESS_TABLES, False),
)


def _prepare_required_writes(loaded_url: str, writes_url: str) -> None:
    """A database shaped like the loaded target, holding what the load did not write (the new
    system's own rows) in place and what it wrote in source tables, for _child_required_writes."""
    from load.schema_version import prepare_target

    writes = sa.create_engine(writes_url)
    prepare_target(writes)
    writes.dispose()
    with _raw(loaded_url) as loaded, _raw(writes_url) as target:
        for name in _WRITTEN_TABLES:
            target.execute(f"CREATE TABLE {_SOURCE_PREFIX}{name} (LIKE {name})")
            written = (
                "1 = 1"
                if name.startswith("mig_")
                else (
                    f"EXISTS (SELECT 1 FROM mig_crosswalk l WHERE l.target_table = '{name}' "
                    f"AND l.target_key = CAST(t.{_key_column(name)} AS TEXT))"
                )
            )
            _copy_between(loaded, target, f"SELECT * FROM {name} t WHERE {written}", f"{_SOURCE_PREFIX}{name}")
            if not name.startswith("mig_"):
                _copy_between(loaded, target, f"SELECT * FROM {name} t WHERE NOT {written}", name)
        target.commit()
        for name in _WRITTEN_TABLES:
            target.execute(f"ANALYZE {_SOURCE_PREFIX}{name}")
        target.commit()


def _drop_foreign_keys(writes_url: str) -> None:
    """Drop the business tables' foreign keys (untimed): the floor of a design that adds them after."""
    with _raw(writes_url) as conn:
        found = conn.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
            [list(_BUSINESS_TABLES)],
        ).fetchall()
        for table, constraint in found:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
        conn.commit()


def _key_column(table_name: str) -> str:
    from load.target_map import target_spec

    return target_spec(table_name).key.name


def _raw(sqlalchemy_url: str):
    import psycopg

    return psycopg.connect(_libpq_url(sqlalchemy_url))


def _copy_between(source, target, query: str, table: str) -> None:
    """Stream the rows of `query` into `table` (same columns), binary COPY out and in."""
    with source.cursor() as out_cursor, target.cursor() as in_cursor:
        with (
            out_cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as out,
            in_cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as into,
        ):
            for data in out:
                into.write(data)


class _Databases:
    """Fresh PostgreSQL databases for one run, dropped at the end."""

    def __init__(self, admin_url: str):
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []
        self.roles: list[str] = []

    def make(self, copy_of: str | None = None) -> str:
        """A new database: empty, or holding what the database at `copy_of` holds (no one connected to it)."""
        name = f"ts24_bench_{uuid.uuid4().hex[:10]}"
        create = f"CREATE DATABASE {self._quoted(name)}"
        if copy_of:  # FILE_COPY: copying the files beats logging every page
            create += f" TEMPLATE {self._quoted(sa.engine.make_url(copy_of).database)} STRATEGY FILE_COPY"
        with self.admin.connect() as conn:
            conn.execute(sa.text(create))
        self.created.append(name)
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def owned_copy(self, copy_of: str) -> str:
        """A copy of the database at `copy_of`, its tables owned by a new login role that is no superuser
        (so it may not set session_replication_role); the URL connects as that role."""
        role = f"ts24_bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f"CREATE ROLE {self._quoted(role)} LOGIN NOSUPERUSER"))
        self.roles.append(role)
        url = self.make(copy_of=copy_of)
        owner = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with owner.connect() as conn:
            conn.execute(
                sa.text(
                    f"ALTER DATABASE {self._quoted(sa.engine.make_url(url).database)} OWNER TO {self._quoted(role)}"
                )
            )
            conn.execute(sa.text(f"ALTER SCHEMA public OWNER TO {self._quoted(role)}"))
            tables = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
            for table in list(tables):  # a table's serial sequences follow it
                conn.execute(sa.text(f"ALTER TABLE {self._quoted(table)} OWNER TO {self._quoted(role)}"))
        owner.dispose()
        return sa.engine.make_url(url).set(username=role).render_as_string(hide_password=False)

    def _quoted(self, name: str) -> str:
        return self.admin.dialect.identifier_preparer.quote(name)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {self._quoted(name)} WITH (FORCE)"))
            for role in self.roles:
                conn.execute(sa.text(f"DROP ROLE IF EXISTS {self._quoted(role)}"))
        self.admin.dispose()


def _libpq_url(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlalchemy_url(libpq_url: str) -> str:
    return sa.engine.make_url(libpq_url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def run_scale(
    scale: float, chunk_rows: int, databases: _Databases, work: Path, rounds: int = 1
) -> dict[str, dict[str, Any]]:
    from ts24_migrate.demo import generate_site

    folder = work / f"scale-{scale:g}"
    folder.mkdir(parents=True)
    legacy_url = f"sqlite:///{folder / 'legacy.sqlite'}"
    target_url, naive_url, floor_url, pgloader_url, writes_url = (databases.make() for _ in range(5))
    legacy, target = sa.create_engine(legacy_url), sa.create_engine(target_url)
    print(f"-- scale {scale:g}: generating the demo site ...", flush=True)
    generate_site(legacy, folder / "files", target=target, seed=42, scale=scale, cutover=CUTOVER)
    target.dispose()
    _prepare_copy_floor(legacy, floor_url, folder / "csv")
    legacy.dispose()
    # Each load gets its own copy of the generated target; the two loads take turns going first.
    copies = [{"load": databases.make(copy_of=target_url), "load_per_row": databases.owned_copy(target_url)}]
    copies += [
        {"load": databases.make(copy_of=target_url), "load_per_row": databases.owned_copy(target_url)}
        for _ in range(rounds - 1)
    ]
    runs: dict[str, list[dict[str, Any]]] = {"load": [], "load_per_row": []}
    for round_no, urls in enumerate(copies):
        for kind in ("load", "load_per_row") if round_no % 2 == 0 else ("load_per_row", "load"):
            runs[kind].append(_measure(kind, legacy_url, urls[kind], str(folder / "files"), chunk_rows))
    target_url = copies[0]["load"]  # loaded: the source of the required writes below
    results = {
        **{kind: _median_run(measured) for kind, measured in runs.items()},
        "transform": _measure("transform", legacy_url, str(folder / "files"), chunk_rows),
        "naive": _measure("naive", legacy_url, naive_url),
        "pgloader": _measure("pgloader", str(folder / "legacy.sqlite"), _libpq_url(pgloader_url), str(folder)),
        "psql_copy": _measure("psql_copy", _libpq_url(floor_url), str(folder / "csv")),
    }
    for kind in ("load", "load_per_row"):
        if not results[kind]["accounting_ok"]:
            raise RuntimeError(f"the {kind} accounting does not hold")
    if results["load"]["loaded"] != results["load_per_row"]["loaded"]:
        raise RuntimeError("the load loaded other rows without the right to skip the per-row checks")
    _prepare_required_writes(target_url, writes_url)
    for kind, tables, foreign_keys in _WRITES_VARIANTS:
        copy_url = databases.make(copy_of=writes_url)
        if not foreign_keys:
            _drop_foreign_keys(copy_url)
        results[kind] = _measure("writes", copy_url, list(tables))
    return results


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure for repeated runs: the median time, the highest peak, the times of every round."""
    seconds = sorted(r["seconds"] for r in runs)
    middle = len(seconds) // 2
    median = seconds[middle] if len(seconds) % 2 else (seconds[middle - 1] + seconds[middle]) / 2
    return {
        **runs[0],
        "seconds": median,
        "peak_mb": max(r["peak_mb"] for r in runs),
        "rounds": [r["seconds"] for r in runs],
    }


_LABELS = {
    "load": "load_site (ours)",
    "load_per_row": "  same, per-row FK checks",
    "transform": "  of which read+transform",
    "naive": "naive read_sql+to_sql",
    "pgloader": "pgloader (no transform)",
    "psql_copy": "psql \\copy from CSV (COPY floor)",
    "writes": "required writes (design floor)",
    "writes_no_fk": "  same, without foreign keys",
    "writes_business": "  business rows only, no FKs",
}


def report(scale: float, results: dict[str, dict[str, Any]]) -> str:
    ours = results["load"]["seconds"]
    lines = [
        f"scale {scale:g}: {results['load']['rows']:,} legacy rows in 6 mapped tables "
        f"({results['load']['loaded']:,} loaded)",
        f"  {'approach':<30} {'seconds':>8} {'rows/s':>10} {'peak MB':>8} {'time / load':>12}",
    ]
    for kind, label in _LABELS.items():
        r = results[kind]
        lines.append(
            f"  {label:<30} {r['seconds']:8.2f} {r['rows'] / r['seconds']:10,.0f} {r['peak_mb']:8.0f} "
            f"{r['seconds'] / ours:11.2f}x"
        )

    def versus_pgloader(kind: str) -> str:
        return f"{results[kind]['seconds'] / results['pgloader']['seconds']:.1f}x"

    speedup = results["naive"]["seconds"] / ours
    versus_naive = f"{speedup:.1f}x faster than" if speedup >= 1 else f"{1 / speedup:.1f}x slower than"
    if len(results["load"]["rounds"]) > 1:
        lines.append(
            "  loads, round by round (first in turn): ours "
            + ", ".join(f"{s:.2f}" for s in results["load"]["rounds"])
            + " s; per-row FK checks "
            + ", ".join(f"{s:.2f}" for s in results["load_per_row"]["rounds"])
            + f" s; per-row / ours (medians) {results['load_per_row']['seconds'] / ours:.2f}"
        )
    lines.append(
        "  foreign-key checks by chunk: "
        f"ours {results['load']['foreign_key_checks']}, the other {results['load_per_row']['foreign_key_checks']}"
    )
    lines.append(
        f"  our load is {versus_naive} the naive migration, "
        f"takes {ours / results['pgloader']['seconds']:.1f}x the time of pgloader "
        f"and {ours / results['psql_copy']['seconds']:.1f}x the time of the COPY floor;\n"
        f"  writing what the load must write (business rows with their keys, a crosswalk row with its lineage "
        f"per row) takes PostgreSQL alone {versus_pgloader('writes')} pgloader's whole run;\n"
        f"  without the new system's foreign keys {versus_pgloader('writes_no_fk')}"
    )
    return "\n".join(lines)


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks load", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="20,80", help="demo scales (1.0 = 2,000 dossiers), comma-separated")
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=50_000,
        help="rows per chunk (the load's default); below the big tables' sizes, so memory is seen bounded by it",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="load each way this many times, taking turns at going first, each into a fresh copy of the "
        "target; the median counts (the machine is shared and noisy)",
    )
    parser.add_argument("--pg-admin-url", default=os.environ.get("TS24_BENCH_PG_URL", DEFAULT_ADMIN_URL))
    options = parser.parse_args(args)
    for program, role in (("psql", "the COPY floor"), ("pgloader", "the pgloader yardstick")):
        if shutil.which(program) is None:
            print(
                f"{program} is not installed, so {role} cannot be measured: `make benchmark` installs it",
                file=sys.stderr,
            )
            return 2
    databases = _Databases(options.pg_admin_url)
    peaks = []
    try:
        with tempfile.TemporaryDirectory(prefix="ts24-bench-load-") as work:
            for scale in (float(s) for s in options.scales.split(",")):
                results = run_scale(scale, options.chunk_rows, databases, Path(work), options.rounds)
                print(report(scale, results), flush=True)
                peaks.append((scale, results["load"]["peak_mb"], results["naive"]["peak_mb"]))
    finally:
        databases.drop_all()
    if len(peaks) > 1:
        (small, load_small, naive_small), (large, load_large, naive_large) = peaks[0], peaks[-1]
        print(
            f"peak memory from scale {small:g} to {large:g}: load {load_small:.0f} -> {load_large:.0f} MB "
            f"({load_large / load_small:.2f}x), naive {naive_small:.0f} -> {naive_large:.0f} MB "
            f"({naive_large / naive_small:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
