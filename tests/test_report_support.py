"""What the validation-report tests share: a migrated demo site, tampering, headless Chromium.

`migrated_site` makes a demo site folder as an operator has it (sites.yaml,
keys, legacy SQLite database, attachments) and runs backup, verification
with the custodian's identity and load through the App, as the CLI and the
flow do. With `target_url` the new system is that database (e.g. PostgreSQL),
referenced from the inventory as `target: env:TS24_REPORT_TARGET_URL`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from load import target_schema as ts
from load.bookkeeping import crosswalk
from load.site_load import prepare_target
from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.demo import generate_site
from ts24_migrate.runs.app import App
from ts24_migrate.runs.assess import assess_step
from ts24_migrate.runs.backup import backup_step, verify_step
from ts24_migrate.runs.load import load_step

SCALE = 0.05
SITE = "demo"
TARGET_ENV = "TS24_REPORT_TARGET_URL"
CUTOVER = "2025-07-01"
CHROMIUM = "chromium"


@dataclass
class MigratedSite:
    folder: Path
    inventory: Path
    identity: Path
    app: App


def _inventory_with_env_target(folder: Path, target_url: str, recipient: str, signing_key: Path) -> Path:
    legacy_path = folder / "legacy" / f"{SITE}.sqlite"
    legacy_path.parent.mkdir(parents=True)
    legacy = sa.create_engine(f"sqlite:///{legacy_path}")
    target = store_engine(Secret(target_url))
    prepare_target(target)
    try:
        generate_site(legacy, folder / "attachments", target=target, seed=42, scale=SCALE, site_id=SITE)
    finally:
        legacy.dispose()
        target.dispose()
    secret = folder / "secrets" / "legacy.url"
    secret.parent.mkdir()
    secret.write_text(f"sqlite:///{legacy_path}\n", encoding="utf-8")
    secret.chmod(0o600)
    inventory = folder / "sites.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "work_dir": "work",
                "backup_dir": "backups",
                "signing_key": str(signing_key),
                "target": f"env:{TARGET_ENV}",
                "sites": [
                    {
                        "id": SITE,
                        "office": "01",
                        "legacy": "file:secrets/legacy.url",
                        "attachments": "attachments",
                        "cutover": CUTOVER,
                        "backup_recipients": [recipient],
                    }
                ],
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return inventory


def migrated_site(folder: Path, *, target_url: str | None = None) -> MigratedSite:
    """A demo site assessed, backed up, verified with a custodian identity and loaded. With `target_url`,
    the caller must have set the environment variable TARGET_ENV to it."""
    folder.mkdir(parents=True, exist_ok=True)
    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    signing_key = folder / "keys" / "signing.key"
    generate_signing_key(signing_key)
    if target_url is None:
        inventory = write_demo_inventory(
            folder / "site", scale=SCALE, backup_recipients=[recipient], signing_key=signing_key
        )
    else:
        assert os.environ.get(TARGET_ENV) == target_url
        inventory = _inventory_with_env_target(folder / "site", target_url, recipient, signing_key)
    app = App(inventory)
    assess_step(app, SITE)
    backup_step(app, SITE)
    verify_step(app, SITE, identity=identity)
    load_step(app, SITE)
    return MigratedSite(folder, inventory, identity, app)


@dataclass(frozen=True)
class Tampered:
    deleted: tuple[str, int, str]  # (target table, target key, legacy key)
    changed: tuple[str, int, str]
    added: tuple[str, int, None]


def tamper_target(target: sa.Engine) -> Tampered:
    """Behind the pipeline's back: delete a history row, change a unit, add a dossier."""

    def first(conn, legacy_table: str, pick) -> tuple[int, str]:
        legacy_key = conn.execute(
            sa.select(pick(crosswalk.c.legacy_key)).where(
                crosswalk.c.site_id == SITE, crosswalk.c.legacy_table == legacy_table
            )
        ).scalar_one()
        target_key = conn.execute(
            sa.select(crosswalk.c.target_key).where(
                crosswalk.c.site_id == SITE,
                crosswalk.c.legacy_table == legacy_table,
                crosswalk.c.legacy_key == legacy_key,
            )
        ).scalar_one()
        return int(target_key), legacy_key

    with target.begin() as conn:
        history_id, history_key = first(conn, "HO_SO_LICH_SU", sa.func.min)
        unit_id, unit_key = first(conn, "DM_DONVI", sa.func.max)
        conn.execute(ts.dossier_history.delete().where(ts.dossier_history.c.history_id == history_id))
        conn.execute(ts.units.update().where(ts.units.c.unit_id == unit_id).values(phone="0999999999"))
        unit_code = conn.execute(sa.select(ts.units.c.unit_code).where(ts.units.c.unit_id == unit_id)).scalar_one()
        moment = conn.execute(sa.select(sa.func.max(ts.dossiers.c.submitted_at))).scalar_one()
        added = conn.execute(
            ts.dossiers.insert()
            .values(
                dossier_no="GHOST-1",
                unit_code=unit_code,
                procedure_code="600",
                submitted_at=moment,
                status="done",
                source="ts24",
                updated_at=moment,
            )
            .returning(ts.dossiers.c.dossier_id)
        ).scalar_one()
    return Tampered(
        ("dossier_history", history_id, history_key), ("units", unit_id, unit_key), ("dossiers", int(added), None)
    )


# -- headless Chromium ------------------------------------------------------------------------

# No network at all: every host name fails to resolve and any proxied request goes nowhere.
OFFLINE_FLAGS = ("--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND")


def chromium_dom(html_path: Path, profile_dir: Path, *, offline: bool = False) -> str:
    """The DOM headless Chromium builds from the page (skips when Chromium is not installed);
    `offline`: as on an auditor's machine without network."""
    if shutil.which(CHROMIUM) is None:
        message = "chromium is not installed (Debian package chromium)"
        if os.environ.get("TS24_REQUIRE_REAL_DBS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    completed = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile_dir}",
            *(OFFLINE_FLAGS if offline else ()),
            "--dump-dom",
            html_path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


class PageText(HTMLParser):
    """Text of the element with a given id, and the cell texts of each table with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.svgs = 0
        self._open: list[tuple[str, str | None]] = []  # (tag, id) of open elements
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        ident = dict(attrs).get("id")
        if tag == "svg":
            self.svgs += 1
        if tag == "table" and ident:
            self._table = ident
            self.tables[ident] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        if tag not in ("br", "img", "meta", "input", "link", "hr", "wbr"):
            self._open.append((tag, ident))
            if ident:
                self.texts.setdefault(ident, "")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "table":
            self._table = None
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _, ident in self._open:
            if ident:
                self.texts[ident] += data


def parse_page(dom: str) -> PageText:
    page = PageText()
    page.feed(dom)
    return page
