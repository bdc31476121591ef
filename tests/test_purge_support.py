"""Shared helpers of the purge tests (no tests here): a demo site taken through the whole migration
to DRAINED (and, for most tests, through `purge prepare`) once per session, then copied per test.

The site is made with the real CLI: demo data (with its view and trigger, plus a legacy row whose
DUONG_DAN climbs out of the folder, and links from the folder to a file and a folder outside it), assess, load,
backup, custodian verification, validate, reconcile, drain, reconcile. A copy is a new SQLite file (a
new inode): the copy re-assesses with `--server-moved`, as an operator does when a database moved.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.main import main
from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import ControlStore
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.signing import generate_signing_key

SITE = "demo"
CLI = "import sys; from ts24_migrate.cli.main import run; sys.argv[0] = 'ts24-migrate'; run()"
OUTSIDE_SECRET = b"not the site's: a file outside the attachment folder\n"
_TEMPLATES: dict[str, Path] = {}


def run_cli(inventory: Path, *args: str, capsys=None) -> tuple[int, Any, str]:
    """Run the CLI in this process with --json; (exit code, parsed stdout or text, stderr)."""
    if capsys is not None:
        capsys.readouterr()
        code = main(["-i", str(inventory), "--json", *args])
        out, err = capsys.readouterr()
    else:  # a fixture without capsys: capture by hand
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["-i", str(inventory), "--json", *args])
        out, err = stdout.getvalue(), stderr.getvalue()
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, out, err


def cli_process(inventory: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", CLI, "-i", str(inventory), "--json", *args]


def run_process(inventory: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_process(inventory, *args), capture_output=True, timeout=timeout)


def _ok(inventory: Path, *args: str) -> None:
    code = main(["-i", str(inventory), "--json", *args])
    assert code == ExitCode.OK, f"{args} -> {code}"


def _plant_scope_traps(folder: Path) -> None:
    """Dirty and hostile things a real site may hold, planted before the first backup."""
    legacy = folder / "legacy" / f"{SITE}.sqlite"
    outside = folder / "attachments" / "outside"  # next to the site's folder, not in it
    outside.mkdir()
    (outside / "secret.txt").write_bytes(OUTSIDE_SECRET)
    files = folder / "attachments" / SITE
    os.symlink("../outside/secret.txt", files / "link-to-outside-file")
    os.symlink("../outside", files / "link-to-outside-folder")
    with sqlite3.connect(legacy) as conn:
        dossier = conn.execute("SELECT MIN(ID_HO_SO) FROM HO_SO WHERE TRANG_THAI >= 4").fetchone()[0]
        next_id = conn.execute("SELECT MAX(ID_TEP) + 1 FROM HO_SO_TEP").fetchone()[0]
        conn.execute(
            "INSERT INTO HO_SO_TEP (ID_TEP, ID_HO_SO, MA_TO_KHAI, TEN_TEP, LOAI_TEP, NOI_DUNG, DUONG_DAN, "
            "KICH_THUOC, MD5) VALUES (?, ?, 'TK1-TS', 'secret.txt', 'xml', NULL, ?, ?, ?)",
            (next_id, dossier, "../outside/secret.txt", len(OUTSIDE_SECRET), hashlib.md5(OUTSIDE_SECRET).hexdigest()),
        )


def _add_purge_people(folder: Path, inventory: Path) -> None:
    for who in ("operator", "approver-b", "approver-c"):
        generate_signing_key(folder / "keys" / who / "signing.key")
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    data["approvers"] = [
        {"name": "Tran Thi B", "role": "Head of IT", "public_key": "keys/approver-b/signing.pub"},
        {"name": "Le Van C", "role": "Deputy director", "public_key": "keys/approver-c/signing.pub"},
        # The operator is an approver too (of other plans): never of their own.
        {"name": "Nguyen Van A", "role": "Operator", "public_key": "keys/operator/signing.pub"},
    ]
    data["purge"] = {
        "approvals_required": 1,
        "operator": {"name": "Nguyen Van A", "role": "Operator", "organisation": "BHXH demo"},
        "media_destination": "returned to TS24 JSC after media sanitization",
    }
    inventory.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def build_template(root: Path, *, prepared: bool) -> Path:
    """A demo site folder DRAINED (prepared: FINAL_BACKUP_VERIFIED); returns its inventory."""
    folder = root / "site"
    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(folder / "keys" / "signing.key")
    inventory = write_demo_inventory(
        folder, scale=0.05, backup_recipients=[recipient], signing_key=Path("keys/signing.key")
    )
    _add_purge_people(folder, inventory)
    _plant_scope_traps(folder)
    for step in (
        ["assess", SITE],
        ["backup", SITE],
        ["backup", "verify", SITE, "--identity", str(identity)],
        ["load", SITE],
        ["validate", SITE],
        ["reconcile", "run", SITE],
        ["demo-advance", SITE, "--days", "4", "--drain"],
        ["reconcile", "run", SITE],
    ):
        _ok(inventory, *step)
    if prepared:
        _ok(inventory, "purge", "prepare", SITE, "--identity", str(identity))
    return inventory


def template(tmp_path_factory, *, prepared: bool = True) -> Path:
    """The session's template site (built on first use, shared by every purge test module)."""
    key = "prepared" if prepared else "drained"
    if key not in _TEMPLATES:
        _TEMPLATES[key] = build_template(tmp_path_factory.mktemp(f"purge-template-{key}"), prepared=prepared)
    return _TEMPLATES[key]


@dataclass
class PurgeSite:
    folder: Path
    inventory: Path

    @property
    def identity(self) -> Path:
        return self.folder / "keys" / "custodian.age-identity"

    def key(self, who: str) -> Path:
        return self.folder / "keys" / who / "signing.key"

    @property
    def legacy(self) -> Path:
        return self.folder / "legacy" / f"{SITE}.sqlite"

    @property
    def files(self) -> Path:
        return self.folder / "attachments" / SITE

    @property
    def public_key(self) -> Path:
        return self.folder / "keys" / "signing.pub"

    @property
    def ledger(self) -> Path:
        return self.folder / "work" / "ledger" / f"{SITE}.jsonl"

    def store(self) -> ControlStore:
        return ControlStore(store_engine(load_inventory(self.inventory).control_store_url()))

    def plan(self, capsys=None, key: str = "operator") -> dict:
        code, result, err = run_cli(self.inventory, "purge", "plan", SITE, "--key", str(self.key(key)), capsys=capsys)
        assert code == ExitCode.OK, err
        return result

    def approve(self, plan: str, who: str = "approver-b", capsys=None) -> str:
        code, result, err = run_cli(
            self.inventory, "purge", "approve", plan, "--key", str(self.key(who)), capsys=capsys
        )
        assert code == ExitCode.OK, err
        return result["approval"]

    def snapshot(self) -> dict[str, Any]:
        """Every byte of the site folder but the work folder (ledger, control store): files by content,
        links by target. Equal before and after = nothing outside the tool's own records changed."""
        result: dict[str, Any] = {}
        for path in sorted(self.folder.rglob("*")):
            relative = path.relative_to(self.folder).as_posix()
            if relative == "work" or relative.startswith("work/"):
                continue
            if path.is_symlink():
                result[relative] = ("link", os.readlink(path))
            elif path.is_file():
                result[relative] = (
                    "file",
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                    oct(path.stat().st_mode & 0o777),
                )
            elif path.is_dir():
                result[relative] = ("dir",)
        return result


def copy_site(source_inventory: Path, destination: Path, *, reassess: bool = True) -> PurgeSite:
    """A copy of a template site whose secrets point at the copy; re-assessed on the copied file."""
    source = source_inventory.parent
    shutil.copytree(source, destination, symlinks=True)
    for secret in (destination / "secrets").iterdir():
        text = secret.read_text(encoding="utf-8").replace(str(source), str(destination))
        secret.write_text(text, encoding="utf-8")
    site = PurgeSite(destination, destination / "sites.yaml")
    if reassess:
        _ok(site.inventory, "assess", SITE, "--server-moved")
    return site
