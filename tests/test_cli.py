"""The CLI: documented commands, one-line errors with documented exit codes, no secrets in output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click

from ts24_migrate.cli.main import cli, main
from ts24_migrate.core.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "ts24_migrate"]


def _command_paths(group: click.Group, prefix: str = "") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            paths += _command_paths(command, path + " ")
        else:
            paths.append(path)
    return paths


def test_every_command_is_documented_in_readme_and_has_an_example():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in _command_paths(cli):
        assert f"`{path}" in readme, f"README does not document {path!r}"
        command = cli
        for part in path.split():
            command = command.commands[part]
        assert "Example:" in (command.help or ""), f"{path!r} help has no Example block"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, cwd=ROOT
    )


def _inventory(tmp_path: Path, legacy_ref: str) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(
        f"""
sites:
  - id: hn-01
    office: "01"
    legacy: {legacy_ref}
    cutover: 2025-07-01
""",
        encoding="utf-8",
    )
    return path


def test_bad_inventory_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "sites.yaml"
    path.write_text("sites:\n  - id: hn-01\n    office: '01'\n    legacy: env:X\n    cutover: 2025-02-30\n")
    result = run_cli("-i", str(path), "sites", "list")
    assert result.returncode == ExitCode.USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "site hn-01, field cutover" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in result.stderr


def test_unreachable_legacy_database_is_one_line_exit_3_without_password(tmp_path):
    inventory = _inventory(tmp_path, "env:TS24_T_LEGACY")
    url = "mysql+pyodbc://root:Very$ecret@127.0.0.1:1/nope?driver=MariaDB+Unicode"
    result = run_cli("-i", str(inventory), "assess", "hn-01", env={"TS24_T_LEGACY": url})
    assert result.returncode == ExitCode.UNREACHABLE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: legacy database of site hn-01 unreachable")
    assert "Very$ecret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_missing_secret_and_unknown_site(tmp_path):
    inventory = _inventory(tmp_path, "env:TS24_T_UNSET")
    env = {k: v for k, v in os.environ.items() if k != "TS24_T_UNSET"}
    result = subprocess.run(
        [*CLI, "-i", str(inventory), "assess", "hn-01"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert result.returncode == ExitCode.USAGE
    assert "site hn-01, field legacy" in result.stderr and "TS24_T_UNSET is not set" in result.stderr
    assert main(["-i", str(inventory), "assess", "dn-02"]) == ExitCode.USAGE


def test_assess_cli_json_on_demo_site(demo_site):
    site = demo_site(scale=0.05, seed=3)
    inventory, truth = site.inventory, site.truth
    result = run_cli("-i", str(inventory), "--json", "assess", "demo")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["summary"]["tables"] == len(truth["tables"])
    assert {name: t["rows"] for name, t in data["tables"].items()} == {
        name: t["rows"] for name, t in truth["tables"].items()
    }
    assert Path(data["reports"]["html"]).exists()
    listing = json.loads(run_cli("-i", str(inventory), "--json", "sites", "list").stdout)
    assert listing["sites"][0]["state"] == "ASSESSED"
    assert re.fullmatch(r"file:secrets/demo\.legacy\.url", listing["sites"][0]["legacy"])


def test_every_reason_code_is_documented():
    from load.reasons import LOAD_REASON_CODES
    from transform import REASON_CODES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    reasons_doc = (ROOT / "docs" / "reason-codes.md").read_text(encoding="utf-8")
    for code in LOAD_REASON_CODES:
        assert f"`{code}`" in readme, code
    for code in REASON_CODES:
        assert f"`{code}`" in reasons_doc, code
