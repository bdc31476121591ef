"""How fast the CLI starts, and what a temporary Prefect server costs a migration.

Measures, in the same run, in fresh processes:

- baseline: `python -c pass`
- `ts24-migrate --help` (and `audit verify --help`, `migrate --help`): the CLI imports no stage
  package, pandas, Great Expectations or Prefect before a command runs
- `ts24-migrate migrate demo` of a demo site, run directly (the default), against
- the same with `--via-prefect`: the `migrate-site` flow on a temporary local Prefect server

and prints each in seconds and as a ratio to its baseline (the start-up to `python -c pass`, the
flow run to the direct run). Each start-up figure is the median of REPEATS runs; each migration
is of the same demo site, made afresh.

    python -m benchmarks startup                # demo site at scale 0.2, 5 repeats
    python -m benchmarks startup --scale 1 --repeats 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SITE = "demo"
CLI = [sys.executable, "-m", "ts24_migrate"]


def _seconds(command: list[str], *, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed


def _median(command: list[str], repeats: int) -> float:
    return statistics.median(_seconds(command) for _ in range(repeats))


def _demo_site(folder: Path, scale: float) -> tuple[Path, Path]:
    from ts24_migrate.cli.commands.demo_data import write_demo_inventory
    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key

    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(folder / "keys" / "signing.key")
    inventory = write_demo_inventory(
        folder, site_id=SITE, scale=scale, backup_recipients=[recipient], signing_key=Path("keys/signing.key")
    )
    return inventory, identity


def _line(label: str, seconds: float, baseline: float) -> str:
    return f"  {label:<52} {seconds:>8.2f} s {seconds / baseline:>8.1f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks startup")
    parser.add_argument("--scale", type=float, default=0.2, help="demo site size (1.0: about 2,000 dossiers)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per start-up figure (the median is shown)")
    args = parser.parse_args(argv)

    print(f"start-up, median of {args.repeats} runs:")
    python = _median([sys.executable, "-c", "pass"], args.repeats)
    print(_line("python -c pass (baseline)", python, python))
    for command in (["--help"], ["audit", "verify", "--help"], ["migrate", "--help"]):
        seconds = _median([*CLI, *command], args.repeats)
        print(_line(f"ts24-migrate {' '.join(command)}", seconds, python))

    with tempfile.TemporaryDirectory(prefix="ts24-bench-startup-") as scratch:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        timings = {}
        for mode, extra in (("directly", []), ("via a temporary Prefect server", ["--via-prefect"])):
            # The same demo site (same seed) made afresh: its secrets hold absolute paths, so no copy.
            inventory, identity = _demo_site(Path(scratch) / mode.split()[0], args.scale)
            timings[mode] = _seconds(
                [*CLI, "-i", str(inventory), "migrate", SITE, "--identity", str(identity), *extra], env=env
            )
    print(f"migrate of the demo site (scale {args.scale}), one run each:")
    direct = timings["directly"]
    for mode, seconds in timings.items():
        print(_line(f"ts24-migrate migrate {mode}", seconds, direct))
    return 0


if __name__ == "__main__":
    sys.exit(main())
