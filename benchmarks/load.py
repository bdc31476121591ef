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

At one scale (--migrate-at: 80 if among --scales, else the smallest), also:

- migrate:    `ts24-migrate migrate SITE --identity KEY` as an operator runs it
              (directly, no Prefect) on another fresh copy of the target, with
              an inventory of its own (custodian age key, signing key, the
              embedded SQLite control store): assess, backup (encrypted),
              verify (every part decrypted and recounted), load, validate
- extract:    every legacy table read as the backup reads it (discovery, then
              record batches in key order, ADBC on SQLite), dropped: with the
              COPY floor, the floor of a migration (read it all, bulk-copy it in)

Each child reports its wall time and its own peak RSS (for psql copy and
pgloader: that program's).
Printed: rows/s, peak memory, and each time as a ratio to the load's; then
the goals of issue 19, each met or missed with its figure from this run: our
load at most pgloader's time and at most twice the COPY floor's at every
scale; its peak RSS flat (largest scale <= 1.2x the smallest) and under 1 GB;
the migration at most 3x extract + COPY floor. The naive migration's memory
grows with the tables; the load's is bounded by --chunk-rows.

    python -m benchmarks load                  # scales 80 and 320 (1.2M and 4.7M legacy rows), chunks of
                                               # 50,000 rows (the load's default): what issue 19 asks for;
                                               # ~20 min on the 2-core machine, twice that when it is busy,
                                               # and ~5 GB of memory for the naive migration at 320
    python -m benchmarks load --skip load_per_row@320,transform@320,writes@320  # all the issue asks, cheaper
    python -m benchmarks load --scales 2 --skip writes,naive   # a quick check that it all runs
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
    from extract.arrow_reader import iter_row_pages
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
            read = iter_row_pages if info.primary_key else iter_table_rows  # the Arrow way where keyed
            for chunk in read(conn, info, chunk_rows=chunk_rows):
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
    # Its Lisp heap may grow to 4 GiB (Debian's build stops at 1 GiB, which the SQLite reader exhausts at
    # scale 320): the limit, not its batching, so pgloader works as it does at a small scale.
    done = subprocess.run(
        ["pgloader", "--dynamic-space-size", "4096", "--quiet", "--root-dir", work_dir, str(command)],
        capture_output=True,
        text=True,
    )
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


def _child_extract(legacy_url: str, chunk_rows: int) -> dict[str, Any]:
    """Every legacy table read as a full backup reads it (discovery, then record batches in key order,
    through ADBC where the backup would), the batches dropped: no Parquet, no encryption, no
    attachments, so a lower bound."""
    from extract.arrow_reader import iter_stored_batches
    from extract.discovery import discover_tables
    from ts24_migrate.core.db import legacy_engine
    from ts24_migrate.core.secrets import Secret

    legacy = legacy_engine(Secret(legacy_url))
    start, rows = time.perf_counter(), 0
    with legacy.connect() as conn:
        for table in discover_tables(conn):
            for batch in iter_stored_batches(conn, table, chunk_rows=chunk_rows):
                rows += batch.num_rows
    return {"seconds": time.perf_counter() - start, "rows": rows}


def _child_migrate(inventory: str, site_id: str, identity: str, chunk_rows: int) -> dict[str, Any]:
    """`ts24-migrate migrate SITE --identity ...` run as an operator runs it (directly, no Prefect):
    assess, backup, verify (decrypting every part), load, validate, each a recorded stage run."""
    import contextlib

    from ts24_migrate.cli.main import main as cli_main
    from ts24_migrate.runs.app import App
    from ts24_migrate.runs.migrate import MIGRATION

    os.environ.pop("PREFECT_API_URL", None)  # would send it to a Prefect server: not what is measured
    command = ["-i", inventory, "migrate", site_id, "--identity", identity, "--chunk-rows", str(chunk_rows)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # its summary and outcome line; stdout carries our figures
        code = cli_main(command)
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"ts24-migrate migrate exited with {code}")
    app = App(Path(inventory))
    stages = {}
    for stage in MIGRATION:  # each stage's own time, as its stage run recorded it
        run = app.control_store.runs(site_id, stage.stage)[-1]
        if run.outcome != "succeeded" or run.finished_at is None:
            raise RuntimeError(f"the migration's {stage.stage} run ended {run.outcome}")
        stages[stage.stage] = (run.finished_at - run.started_at).total_seconds()
    app.close()
    return {"seconds": seconds, "stages": stages}


_CHILDREN = {
    "load": _child_load,
    "load_per_row": _child_load,
    "transform": _child_transform,
    "naive": _child_naive,
    "pgloader": _child_pgloader,
    "psql_copy": _child_psql_copy,
    "writes": _child_required_writes,
    "extract": _child_extract,
    "migrate": _child_migrate,
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


MIGRATE_SITE = "demo"  # the site id the demo generator planted the new system's side for


def _prepare_migrate_site(folder: Path, legacy_path: Path, files: Path, target_url: str) -> tuple[Path, Path]:
    """A site inventory as an operator writes one (custodian age key, signing key, secret files, the
    embedded SQLite control store in the work folder) for the legacy database and a fresh copy of the
    target; returns the inventory and the custodian's identity."""
    import yaml

    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key

    folder.mkdir(parents=True)
    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(folder / "keys" / "signing.key")
    for name, url in (("legacy.url", f"sqlite:///{legacy_path.resolve()}"), ("target.url", target_url)):
        (folder / "secrets").mkdir(mode=0o700, exist_ok=True)
        with os.fdopen(os.open(folder / "secrets" / name, os.O_WRONLY | os.O_CREAT, 0o600), "w") as secret:
            secret.write(url + "\n")
    site = {
        "id": MIGRATE_SITE,
        "office": "01",
        "name": "benchmark site",
        "legacy": "file:secrets/legacy.url",
        "attachments": str(files.resolve()),
        "cutover": CUTOVER.isoformat(),
        "backup_recipients": [recipient],
    }
    inventory = {
        "version": 1,
        "work_dir": "work",
        "backup_dir": "backups",
        "signing_key": "keys/signing.key",
        "target": "file:secrets/target.url",
        "sites": [site],
    }
    path = folder / "sites.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return path, identity


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


_STARTED = time.monotonic()


def _progress(what: str) -> None:
    """A line on the way, with the minutes since the benchmark started (a large scale takes a while)."""
    print(f"-- {what} ... ({(time.monotonic() - _STARTED) / 60:.1f} min)", flush=True)


def run_scale(
    scale: float,
    chunk_rows: int,
    databases: _Databases,
    work: Path,
    rounds: int = 1,
    skip: frozenset[str] = frozenset(),
    migrate: bool = False,
) -> dict[str, dict[str, Any]]:
    """Measure every approach at `scale` but those in `skip` (see SKIPPABLE); with `migrate`, also the
    end-to-end migration and the extract it is compared with."""
    from ts24_migrate.demo import generate_site

    folder = work / f"scale-{scale:g}"
    folder.mkdir(parents=True)
    legacy_url = f"sqlite:///{folder / 'legacy.sqlite'}"
    target_url, naive_url, floor_url, pgloader_url = (databases.make() for _ in range(4))
    legacy, target = sa.create_engine(legacy_url), sa.create_engine(target_url)
    _progress(f"scale {scale:g}: generating the demo site")
    generate_site(legacy, folder / "files", target=target, seed=42, scale=scale, cutover=CUTOVER)
    target.dispose()
    _prepare_copy_floor(legacy, floor_url, folder / "csv")
    legacy.dispose()
    # Each load gets its own copy of the generated target; the two loads take turns going first.
    kinds = ("load",) if "load_per_row" in skip else ("load", "load_per_row")
    copies = [
        {
            kind: databases.owned_copy(target_url) if kind == "load_per_row" else databases.make(copy_of=target_url)
            for kind in kinds
        }
        for _ in range(rounds)
    ]
    migrate_target = databases.make(copy_of=target_url) if migrate else None
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for round_no, urls in enumerate(copies):
        _progress(f"scale {scale:g}: loading (round {round_no + 1} of {rounds})")
        for kind in kinds if round_no % 2 == 0 else kinds[::-1]:
            runs[kind].append(_measure(kind, legacy_url, urls[kind], str(folder / "files"), chunk_rows))
    loaded_url = copies[0]["load"]  # loaded: the source of the required writes below
    results = {kind: _median_run(measured) for kind, measured in runs.items()}
    _progress(f"scale {scale:g}: measuring the yardsticks")
    if "transform" not in skip:
        results["transform"] = _measure("transform", legacy_url, str(folder / "files"), chunk_rows)
    if "naive" not in skip:
        results["naive"] = _measure("naive", legacy_url, naive_url)
    results["pgloader"] = _measure("pgloader", str(folder / "legacy.sqlite"), _libpq_url(pgloader_url), str(folder))
    results["psql_copy"] = _measure("psql_copy", _libpq_url(floor_url), str(folder / "csv"))
    for kind in kinds:
        if not results[kind]["accounting_ok"]:
            raise RuntimeError(f"the {kind} accounting does not hold")
    if "load_per_row" in results and results["load"]["loaded"] != results["load_per_row"]["loaded"]:
        raise RuntimeError("the load loaded other rows without the right to skip the per-row checks")
    if migrate_target is not None:
        _progress(f"scale {scale:g}: migrating end to end")
        results["extract"] = _measure("extract", legacy_url, chunk_rows)
        inventory, identity = _prepare_migrate_site(
            folder / "migrate", folder / "legacy.sqlite", folder / "files", migrate_target
        )
        migrated = _measure("migrate", str(inventory), MIGRATE_SITE, str(identity), chunk_rows)
        results["migrate"] = {**migrated, "rows": results["extract"]["rows"]}  # it backs up every legacy row
    if "writes" not in skip:
        _progress(f"scale {scale:g}: measuring the design floors")
        writes_url = databases.make()
        _prepare_required_writes(loaded_url, writes_url)
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
    "extract": "extract (read every table)",
    "migrate": "migrate end to end (CLI)",
}

# The design floors beside the required writes, as the summary line names them.
_FLOOR_NOTES = {
    "writes_no_fk": "without the new system's foreign keys",
    "writes_business": "the business rows alone, no foreign keys",
}

# What --skip may leave out (each is a yardstick beside the goals, not one of them); "writes" is the
# four design floors, "migrate" the end-to-end migration with its extract.
SKIPPABLE = ("load_per_row", "transform", "naive", "writes", "migrate")


def report(scale: float, results: dict[str, dict[str, Any]]) -> str:
    ours = results["load"]["seconds"]
    lines = [
        f"scale {scale:g}: {results['load']['rows']:,} legacy rows in 6 mapped tables "
        f"({results['load']['loaded']:,} loaded)",
        f"  {'approach':<34} {'seconds':>8} {'rows/s':>10} {'peak MB':>8} {'time / load':>12}",
    ]
    shown = ["load", "load_per_row", "transform", "naive", "pgloader", "psql_copy"]
    shown += [kind for kind, _tables, _foreign_keys in _WRITES_VARIANTS] + ["extract", "migrate"]
    for kind in shown:
        label, r = _LABELS.get(kind, kind), results.get(kind)
        if r is None:
            if kind in SKIPPABLE and kind != "migrate":  # skipped; migrate is measured at one scale only
                lines.append(f"  {label:<34} {'skipped':>8}")
            continue
        lines.append(
            f"  {label:<34} {r['seconds']:8.2f} {r['rows'] / r['seconds']:10,.0f} {r['peak_mb']:8.0f} "
            f"{r['seconds'] / ours:11.2f}x"
        )
    if "migrate" in results:
        stages = results["migrate"]["stages"]
        lines.append(
            "  migrate by stage (seconds, as its stage runs recorded them): "
            + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items())
            + f"; around them (imports, gates, outcome) {results['migrate']['seconds'] - sum(stages.values()):.1f}"
        )

    def versus_pgloader(kind: str) -> str:
        return f"{results[kind]['seconds'] / results['pgloader']['seconds']:.1f}x"

    if "load_per_row" in results:
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
    else:
        lines.append(f"  foreign-key checks by chunk: ours {results['load']['foreign_key_checks']}")
    summary = f"  our load takes {ours / results['pgloader']['seconds']:.1f}x the time of pgloader "
    summary += f"and {ours / results['psql_copy']['seconds']:.1f}x the time of the COPY floor"
    if "naive" in results:
        speedup = results["naive"]["seconds"] / ours
        versus_naive = f"{speedup:.1f}x faster than" if speedup >= 1 else f"{1 / speedup:.1f}x slower than"
        summary += f"; it is {versus_naive} the naive migration"
    if "writes" in results:
        summary += (
            ";\n  writing what the load must write (business rows with their keys, a crosswalk row with its lineage per row) "
            f"takes PostgreSQL alone {versus_pgloader('writes')} pgloader's whole run"
        )
        variants = [kind for kind, _tables, _foreign_keys in _WRITES_VARIANTS[1:] if kind in results]
        if variants:
            summary += ";\n  " + ", ".join(
                f"{_FLOOR_NOTES.get(kind, kind)} {versus_pgloader(kind)}" for kind in variants
            )
    lines.append(summary)
    return "\n".join(lines)


# The goals of issue 19, each a ratio of times (or of memory) measured in the same run.
PGLOADER_GOAL = 1.0  # our load's time / pgloader's
COPY_FLOOR_GOAL = 2.0  # our load's time / psql \copy's
FLAT_MEMORY_GOAL = 1.2  # our load's peak at the largest scale / at the smallest
MEMORY_LIMIT_MB = 1024.0  # our load's peak, at every scale
MIGRATE_GOAL = 3.0  # migrate end to end / (extract + COPY floor)
MIGRATE_SCALE = 80.0  # where the issue measures it


def _goal(what: str, figure: str, met: bool, goal: str) -> str:
    return f"  {what}: {figure} (goal {goal}): {'met' if met else 'MISSED'}"


def goal_lines(measured: list[tuple[float, dict[str, dict[str, Any]]]]) -> str:
    """Each goal of the issue, met or missed, with the figure from this run."""
    lines = ["goals (issue 19), from this run:"]
    for scale, results in measured:
        ours = results["load"]["seconds"]
        to_pgloader = ours / results["pgloader"]["seconds"]
        to_floor = ours / results["psql_copy"]["seconds"]
        lines.append(
            _goal(
                f"scale {scale:g}, load vs pgloader",
                f"{ours:.1f} s / {results['pgloader']['seconds']:.1f} s = {to_pgloader:.2f}x",
                to_pgloader <= PGLOADER_GOAL,
                f"<= {PGLOADER_GOAL:.1f}x",
            )
        )
        lines.append(
            _goal(
                f"scale {scale:g}, load vs COPY floor",
                f"{ours:.1f} s / {results['psql_copy']['seconds']:.1f} s = {to_floor:.2f}x",
                to_floor <= COPY_FLOOR_GOAL,
                f"<= {COPY_FLOOR_GOAL:.1f}x",
            )
        )
    peaks = [(scale, results["load"]["peak_mb"]) for scale, results in measured]
    if len(peaks) > 1:
        (small, at_small), (large, at_large) = peaks[0], peaks[-1]
        lines.append(
            _goal(
                f"load peak RSS flat, scale {small:g} -> {large:g}",
                f"{at_small:.0f} -> {at_large:.0f} MB = {at_large / at_small:.2f}x",
                at_large / at_small <= FLAT_MEMORY_GOAL,
                f"<= {FLAT_MEMORY_GOAL:.1f}x",
            )
        )
    else:
        lines.append("  load peak RSS flat: not measured (it takes two scales, e.g. --scales 80,320)")
    highest_scale, highest = max(peaks, key=lambda peak: peak[1])
    lines.append(
        _goal(
            "load peak RSS",
            f"highest {highest:.0f} MB (scale {highest_scale:g})",
            highest < MEMORY_LIMIT_MB,
            f"under {MEMORY_LIMIT_MB:,.0f} MB",
        )
    )
    migrated = [(scale, results) for scale, results in measured if "migrate" in results]
    for scale, results in migrated:
        floor = results["extract"]["seconds"] + results["psql_copy"]["seconds"]
        ratio = results["migrate"]["seconds"] / floor
        lines.append(
            _goal(
                f"scale {scale:g}, migrate vs extract + COPY floor",
                f"{results['migrate']['seconds']:.1f} s / ({results['extract']['seconds']:.1f} + "
                f"{results['psql_copy']['seconds']:.1f}) s = {ratio:.2f}x, peak {results['migrate']['peak_mb']:.0f} MB",
                ratio <= MIGRATE_GOAL,
                f"<= {MIGRATE_GOAL:.1f}x",
            )
        )
    if not migrated:
        lines.append("  migrate vs extract + COPY floor: not measured (--skip migrate)")
    return "\n".join(lines)


def _parse_skip(text: str, scales: list[float]) -> dict[float, frozenset[str]]:
    """--skip naive,load_per_row@320: what to leave out at each scale (without @SCALE: at every one)."""
    skipped: dict[float, set[str]] = {scale: set() for scale in scales}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, at = item.partition("@")
        if kind not in SKIPPABLE:
            raise SystemExit(f"--skip: no {kind!r} to skip (there are: {', '.join(SKIPPABLE)})")
        for scale in [float(at)] if at else scales:
            if scale not in skipped:
                raise SystemExit(f"--skip: scale {at} is not among --scales")
            skipped[scale].add(kind)
    return {scale: frozenset(kinds) for scale, kinds in skipped.items()}


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks load", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales", default="80,320", help="demo scales (1.0 = 2,000 dossiers), comma-separated [default: 80,320]"
    )
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
    parser.add_argument(
        "--skip",
        default="",
        metavar="KIND[@SCALE],...",
        help=f"leave these yardsticks out, at every scale or at SCALE only ({', '.join(SKIPPABLE)}); "
        "e.g. --skip load_per_row@320,transform@320,writes@320 to afford a large scale",
    )
    parser.add_argument(
        "--migrate-at",
        type=float,
        help="the scale of the end-to-end migrate, one of --scales [default: 80 if among them (the issue's), "
        "else the smallest]",
    )
    parser.add_argument("--pg-admin-url", default=os.environ.get("TS24_BENCH_PG_URL", DEFAULT_ADMIN_URL))
    options = parser.parse_args(args)
    scales = [float(s) for s in options.scales.split(",")]
    skipped = _parse_skip(options.skip, scales)
    migrate_at = options.migrate_at or (MIGRATE_SCALE if MIGRATE_SCALE in scales else min(scales))
    if migrate_at not in scales:
        parser.error(f"--migrate-at {migrate_at:g} is not among --scales {options.scales}")
    for program, role in (("psql", "the COPY floor"), ("pgloader", "the pgloader yardstick")):
        if shutil.which(program) is None:
            print(
                f"{program} is not installed, so {role} cannot be measured: `make benchmark` installs it",
                file=sys.stderr,
            )
            return 2
    databases = _Databases(options.pg_admin_url)
    measured = []
    try:
        with tempfile.TemporaryDirectory(prefix="ts24-bench-load-") as work:
            for scale in scales:
                migrate = scale == migrate_at and "migrate" not in skipped[scale]
                results = run_scale(
                    scale, options.chunk_rows, databases, Path(work), options.rounds, skipped[scale], migrate
                )
                print(report(scale, results), flush=True)
                measured.append((scale, results))
    finally:
        databases.drop_all()
    if len(measured) > 1:
        (small, at_small), (large, at_large) = measured[0], measured[-1]
        line = (
            f"peak memory from scale {small:g} to {large:g}: load {at_small['load']['peak_mb']:.0f} -> "
            f"{at_large['load']['peak_mb']:.0f} MB ({at_large['load']['peak_mb'] / at_small['load']['peak_mb']:.2f}x)"
        )
        if "naive" in at_small and "naive" in at_large:
            naive_small, naive_large = at_small["naive"]["peak_mb"], at_large["naive"]["peak_mb"]
            line += f", naive {naive_small:.0f} -> {naive_large:.0f} MB ({naive_large / naive_small:.2f}x)"
        print(line)
    print(goal_lines(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
