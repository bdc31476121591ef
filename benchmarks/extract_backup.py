"""Extract + encrypted backup throughput and memory, next to a plain SELECT of the same rows.

For each scale, a demo TS24 site (SQLite legacy database plus attachment
folder) is generated, then two fresh child processes measure, in the same run:

- baseline: a plain SELECT of every table, rows fetched in chunks and dropped
- read current / read arrow: every table read as the batches the backup stores
  (extract.arrow_reader.iter_stored_batches) and fingerprinted, through the
  current reader and through ADBC (Arrow-native reads); the two must give the
  same fingerprints, and their time ratio is printed
- backup:   backup_site(): extract, Parquet, age-encrypt, fsync, journal, sign
  (and again with Arrow-native reads)

and each reports its wall time and its own peak RSS. Printed: rows/s, MB/s
(ciphertext written), the backup/baseline time ratio, and peak memory per
scale; memory must stay flat from the small scale to the large one, since it
is bounded by --chunk-rows, not by the table size.

    python -m benchmarks extract_backup                       # scales 10 and 40
    python -m benchmarks extract_backup --scales 2,10 --chunk-rows 20000
    python -m benchmarks extract_backup --mariadb-url 'mysql+pyodbc://root:@127.0.0.1:3306/test?driver=MariaDB+Unicode&charset=utf8mb4'

With --mariadb-url (a MariaDB server over ODBC; the benchmark creates and drops
its own database there), the same demo site is also written to MariaDB and
both read paths are measured on it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def _child_baseline(url: str, chunk_rows: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from extract.discovery import discover_tables
    from ts24_migrate.core.db import legacy_engine
    from ts24_migrate.core.secrets import Secret

    engine = legacy_engine(Secret(url))
    start = time.perf_counter()
    rows = 0
    with engine.connect() as conn:
        for table in discover_tables(conn):
            result = conn.execution_options(stream_results=True).execute(sa.select(*table.table.columns))
            while chunk := result.fetchmany(chunk_rows):
                rows += len(chunk)
    return {"seconds": time.perf_counter() - start, "rows": rows}


def _child_read(url: str, chunk_rows: int, arrow_reads: bool) -> dict[str, Any]:
    from extract.arrow_reader import ArrowReadStats, iter_stored_batches
    from extract.discovery import discover_tables
    from ts24_migrate.core.db import legacy_engine
    from ts24_migrate.core.rows.batch_digest import batch_row_digests
    from ts24_migrate.core.rows.fingerprint import TableFingerprint
    from ts24_migrate.core.secrets import Secret

    engine = legacy_engine(Secret(url))
    stats = ArrowReadStats()
    fingerprints: dict[str, str] = {}
    rows, digesting = 0, 0.0
    start = time.perf_counter()
    with engine.connect() as conn:
        for table in discover_tables(conn):
            fingerprint = TableFingerprint()
            for batch in iter_stored_batches(conn, table, chunk_rows=chunk_rows, arrow_reads=arrow_reads, stats=stats):
                rows += batch.num_rows
                digest_start = time.perf_counter()
                fingerprint.add_digests(batch_row_digests(batch))
                digesting += time.perf_counter() - digest_start
            fingerprints[table.name] = fingerprint.hexdigest()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "read_seconds": seconds - digesting,
        "rows": rows,
        "fingerprints": fingerprints,
        "arrow_pages": stats.arrow_pages,
        "fallback_pages": stats.fallback_pages,
    }


def _child_backup(
    url: str, chunk_rows: int, files: str, root: str, recipient: str, key: str, arrow_reads: bool = False
) -> dict[str, Any]:
    import os

    from backups.backup import backup_site
    from extract.arrow_reader import ARROW_READS_ENV

    os.environ[ARROW_READS_ENV] = "all" if arrow_reads else "off"
    from ts24_migrate.core.db import legacy_engine
    from ts24_migrate.core.secrets import Secret
    from ts24_migrate.core.signing import load_signing_key

    engine = legacy_engine(Secret(url))
    signing_key = load_signing_key(Path(key))
    start = time.perf_counter()
    result = backup_site(
        engine,
        Path(files),
        Path(root),
        site_id="bench",
        run_id=str(uuid.uuid4()),
        recipients=[recipient],
        signing_key=signing_key,
        chunk_rows=chunk_rows,
    )
    totals = result.manifest.data["totals"]
    return {
        "seconds": time.perf_counter() - start,
        "rows": totals["rows"],
        "parts": totals["parts"],
        "ciphertext_bytes": totals["ciphertext_bytes"],
        "plaintext_bytes": totals["plaintext_bytes"],
        "attachment_bytes": (result.manifest.attachments or {}).get("bytes", 0),
    }


def _measure(kind: str, **options: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter, so its peak RSS is its own."""
    command = [sys.executable, "-m", "benchmarks.extract_backup", "--child", kind, "--options", json.dumps(options)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _site(folder: Path, scale: float) -> tuple[str, Path, float]:
    import sqlalchemy as sa

    from ts24_migrate.demo import generate_site

    url = f"sqlite:///{folder / 'legacy.sqlite'}"
    engine = sa.create_engine(url)
    start = time.perf_counter()
    generate_site(engine, folder / "files", scale=scale, seed=7)
    engine.dispose()
    return url, folder / "files", time.perf_counter() - start


def _mariadb_reads(server_url: str, scale: float, folder: Path, chunk_rows: int) -> dict[bool, dict[str, Any]]:
    """The demo site written to a new MariaDB database, read both ways (each in its own process)."""
    import sqlalchemy as sa

    from ts24_migrate.demo import generate_site

    name = f"ts24_bench_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        site = sa.create_engine(url)
        generate_site(site, folder / "files-mariadb", scale=scale, seed=7)
        site.dispose()
        reads = {arrow: _measure("read", url=url, chunk_rows=chunk_rows, arrow_reads=arrow) for arrow in (False, True)}
        assert reads[True]["fingerprints"] == reads[False]["fingerprints"], "Arrow reads must read the same rows"
        return reads
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks extract_backup")
    parser.add_argument("--scales", default="10,40", help="demo scales, comma-separated (1.0 ~ 15k rows)")
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--mariadb-url", help="also compare the read paths on MariaDB over ODBC (server URL)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        options = json.loads(args.options)
        children = {"baseline": _child_baseline, "read": _child_read, "backup": _child_backup}
        measured = children[args.child](**options)
        measured["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(measured))
        return 0

    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key

    results = []
    read_results: list[tuple[float, dict[bool, dict[str, Any]], dict[bool, dict[str, Any]]]] = []
    mariadb_results: list[tuple[float, dict[bool, dict[str, Any]]]] = []
    with tempfile.TemporaryDirectory(prefix="ts24-bench-") as temp:
        base = Path(temp)
        recipient = generate_custodian_identity(base / "custodian.age-identity")
        generate_signing_key(base / "signing.key")
        for scale in [float(s) for s in args.scales.split(",")]:
            folder = base / f"scale-{scale:g}"
            folder.mkdir()
            url, files, generated = _site(folder, scale)
            baseline = _measure("baseline", url=url, chunk_rows=args.chunk_rows)
            reads = {
                arrow: _measure("read", url=url, chunk_rows=args.chunk_rows, arrow_reads=arrow)
                for arrow in (False, True)
            }
            assert reads[True]["fingerprints"] == reads[False]["fingerprints"], "Arrow reads must read the same rows"
            backups = {
                arrow: _measure(
                    "backup",
                    url=url,
                    chunk_rows=args.chunk_rows,
                    files=str(files),
                    root=str(folder / f"backups-{'arrow' if arrow else 'current'}"),
                    recipient=recipient,
                    key=str(base / "signing.key"),
                    arrow_reads=arrow,
                )
                for arrow in (False, True)
            }
            if args.mariadb_url:
                reads_mariadb = _mariadb_reads(args.mariadb_url, scale, folder, args.chunk_rows)
                mariadb_results.append((scale, reads_mariadb))
            backup = backups[False]
            assert backup["rows"] == baseline["rows"], "the backup must hold every row the SELECT returned"
            results.append((scale, generated, baseline, backup))
            read_results.append((scale, reads, backups))

    print(f"chunk_rows={args.chunk_rows}; SQLite legacy database; times are wall seconds")
    print(
        f"{'scale':>6} {'rows':>9} {'select s':>9} {'select rows/s':>14} {'backup s':>9} {'backup rows/s':>14} "
        f"{'MB/s enc':>9} {'x select':>9} {'RSS select':>11} {'RSS backup':>11}"
    )
    for scale, _generated, baseline, backup in results:
        mb = backup["ciphertext_bytes"] / 1e6
        print(
            f"{scale:>6g} {backup['rows']:>9} {baseline['seconds']:>9.2f} "
            f"{baseline['rows'] / baseline['seconds']:>14,.0f} {backup['seconds']:>9.2f} "
            f"{backup['rows'] / backup['seconds']:>14,.0f} {mb / backup['seconds']:>9.1f} "
            f"{backup['seconds'] / baseline['seconds']:>9.1f} {baseline['peak_rss_mb']:>9.0f}MB "
            f"{backup['peak_rss_mb']:>9.0f}MB"
        )
    print("Arrow-native reads (ADBC) against the current reader, same run, same fingerprints:")
    print(
        f"{'scale':>6} {'read cur s':>10} {'read arrow s':>12} {'x cur':>6} {'+digest cur':>11} "
        f"{'+digest arrow':>13} {'arrow/fallback pages':>21} {'backup cur s':>12} {'backup arrow s':>14} "
        f"{'x cur':>6} {'RSS cur':>8} {'RSS arrow':>10}"
    )
    for scale, reads, backups in read_results:
        current, arrow = reads[False], reads[True]
        print(
            f"{scale:>6g} {current['read_seconds']:>10.2f} {arrow['read_seconds']:>12.2f} "
            f"{arrow['read_seconds'] / current['read_seconds']:>6.2f} {current['seconds']:>11.2f} "
            f"{arrow['seconds']:>13.2f} {arrow['arrow_pages']:>10}/{arrow['fallback_pages']:<10} "
            f"{backups[False]['seconds']:>12.2f} {backups[True]['seconds']:>14.2f} "
            f"{backups[True]['seconds'] / backups[False]['seconds']:>6.2f} {current['peak_rss_mb']:>6.0f}MB "
            f"{arrow['peak_rss_mb']:>8.0f}MB"
        )
    if mariadb_results:
        print("... on MariaDB over ODBC (arrow-odbc against pyodbc), same run, same fingerprints:")
        print(
            f"{'scale':>6} {'rows':>9} {'read cur s':>10} {'read arrow s':>12} {'x cur':>6} {'arrow/fallback pages':>21} {'RSS cur':>8} {'RSS arrow':>10}"
        )
        for scale, reads in mariadb_results:
            current, arrow = reads[False], reads[True]
            print(
                f"{scale:>6g} {current['rows']:>9} {current['read_seconds']:>10.2f} {arrow['read_seconds']:>12.2f} "
                f"{arrow['read_seconds'] / current['read_seconds']:>6.2f} {arrow['arrow_pages']:>10}/{arrow['fallback_pages']:<10} "
                f"{current['peak_rss_mb']:>6.0f}MB {arrow['peak_rss_mb']:>8.0f}MB"
            )
    if len(results) > 1:
        (s1, _, _, small), (s2, _, _, large) = results[0], results[-1]
        print(
            f"rows x{large['rows'] / small['rows']:.1f} from scale {s1:g} to {s2:g}: backup peak RSS "
            f"x{large['peak_rss_mb'] / small['peak_rss_mb']:.2f} (flat means bounded by chunk_rows)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
