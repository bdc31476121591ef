"""Commands that touch no database start without the heavy libraries (pandas, pyarrow, Great
Expectations, Prefect, SQLAlchemy): the CLI imports a stage only when its command runs.
(The start-up time itself is measured by `python -m benchmarks startup`, not here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_contract import COMMAND_PATHS

HEAVY = {"pandas", "pyarrow", "great_expectations", "prefect", "numpy", "sqlalchemy"}
_PROBE = (
    "import json, sys\n"
    "from ts24_migrate.cli.main import main\n"
    "code = main(json.loads(sys.argv[1]))\n"
    "print(json.dumps([code, sorted({name.split('.')[0] for name in sys.modules})]), file=sys.stderr)\n"
)


def _run(argv: list[str]) -> tuple[int, set[str], str]:
    """Exit code and top-level modules loaded after the command ran, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)], capture_output=True, text=True, timeout=120
    )
    code, modules = json.loads(result.stderr.strip().splitlines()[-1])
    return code, set(modules), result.stdout


@pytest.mark.parametrize(
    "argv", [["--help"], *[[*path, "--help"] for path in COMMAND_PATHS]], ids=lambda argv: " ".join(argv)
)
def test_help_loads_no_heavy_library(argv):
    code, modules, out = _run(argv)
    assert code == 0 and "Usage:" in out
    assert not modules & HEAVY, sorted(modules & HEAVY)


def test_audit_verify_and_keys_generate_load_no_heavy_library(tmp_path: Path):
    from audit import Ledger
    from ts24_migrate.core.signing import generate_signing_key, load_signing_key

    generate_signing_key(tmp_path / "signing.key")
    ledger = tmp_path / "hn-01.jsonl"
    Ledger(ledger, load_signing_key(tmp_path / "signing.key")).append("hn-01", "assess", "started", {})

    code, modules, out = _run(["audit", "verify", str(ledger), "--public-key", str(tmp_path / "signing.pub")])
    assert code == 0 and "intact" in out.lower(), out
    assert not modules & HEAVY, sorted(modules & HEAVY)

    code, modules, out = _run(["keys", "generate", "--out", str(tmp_path / "keys"), "--custodian", "alice"])
    assert code == 0 and "age1" in out
    assert not modules & HEAVY, sorted(modules & HEAVY)
