"""What every CLI command shares: the inventory, engines, the control store, output.

Commands get an `App` from click's context; they build nothing else themselves.
Nothing heavy is imported here at module level (SQLAlchemy, the inventory's
pydantic models): `ts24-migrate --help` must start at once.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ts24_migrate.core.errors import ConfigError
from ts24_migrate.runs import secret_stores  # noqa: F401  (registers prefect: secrets)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ts24_migrate.core.config import Inventory, SiteConfig
    from ts24_migrate.core.control_store import ControlStore

DEFAULT_INVENTORY = "sites.yaml"


@dataclass
class App:
    inventory_path: Path
    json_output: bool = False
    debug: bool = False
    _engines: dict[str, Engine] = field(default_factory=dict)
    # With --json, what the command emitted; the CLI prints it once, as the one JSON object of the run.
    json_payload: Any = None
    # The outcome line of a command that failed (cli/commands/outcome.py): --json adds it to its object.
    failed_outcome: dict[str, Any] | None = None

    @cached_property
    def inventory(self) -> Inventory:
        from ts24_migrate.core.config import load_inventory

        return load_inventory(self.inventory_path)

    def site(self, site_id: str) -> SiteConfig:
        return self.inventory.site(site_id)

    def legacy_engine(self, site: SiteConfig, *, read_only: bool = True) -> Engine:
        from ts24_migrate.core.db import check_reachable, legacy_engine

        key = f"legacy:{site.id}:{read_only}"
        if key not in self._engines:
            url = self.inventory.legacy_url(site)
            engine = legacy_engine(url, read_only=read_only)
            check_reachable(engine, what=f"legacy database of site {site.id}", url=url)
            self._engines[key] = engine
        return self._engines[key]

    def forget_legacy_engines(self, site: SiteConfig) -> None:
        """Close this site's legacy engines (the purge, before it destroys a SQLite file they hold open)."""
        for key in [k for k in self._engines if k.startswith(f"legacy:{site.id}:")]:
            self._engines.pop(key).dispose()

    def target_engine(self) -> Engine:
        from ts24_migrate.core.db import check_reachable, store_engine

        if "target" not in self._engines:
            url = self.inventory.target_url()
            engine = store_engine(url)
            check_reachable(engine, what="target database", url=url)
            self._engines["target"] = engine
        return self._engines["target"]

    def current_target(self) -> Engine:
        """The target engine, its bookkeeping at this release's schema: validate and reconcile read
        and write it as this release shapes it, also on a target an older release loaded."""
        from load.schema_version import LATEST_VERSION, prepare_target, schema_version_of

        engine = self.target_engine()
        if schema_version_of(engine) < LATEST_VERSION:  # a target already current is not written
            prepare_target(engine)
        return engine

    @cached_property
    def signing_key(self):
        """The inventory's Ed25519 key that signs manifests and ledger events."""
        from ts24_migrate.core.signing import load_signing_key

        path = self.inventory.signing_key_path
        if path is None:
            raise ConfigError(
                "the inventory has no signing_key; make one, in the inventory's folder, with "
                "`ts24-migrate keys generate --out keys --only signing` and set "
                "signing_key: keys/signing.key",
                path=str(self.inventory.source_path),
                field="signing_key",
            )
        return load_signing_key(path)

    def ledger_path(self, site_id: str) -> Path:
        return ledger_path(self.inventory, site_id)

    def ledger(self, site_id: str):
        from audit.ledger import Ledger

        return Ledger(self.ledger_path(site_id), self.signing_key)

    def reports_dir(self, site_id: str) -> Path:
        return self.inventory.site_dir(site_id) / "reports"

    @cached_property
    def control_store(self) -> ControlStore:
        from ts24_migrate.core.control_store import ControlStore
        from ts24_migrate.core.db import check_reachable, store_engine

        url = self.inventory.control_store_url()
        engine = store_engine(url)
        check_reachable(engine, what="control store", url=url)
        return ControlStore(engine)

    def sqlite_folders(self) -> list[Path]:
        """The folders of the SQLite databases this command writes (to name them when one cannot be written)."""
        engines = [engine for key, engine in self._engines.items() if not key.endswith(":True")]  # not read-only
        if "control_store" in self.__dict__:
            engines.append(self.control_store.engine)
        folders = []
        for engine in engines:
            database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
            if database:
                folder = Path(database.removeprefix("file:").split("?")[0]).parent
                if folder not in folders:
                    folders.append(folder)
        return folders

    def emit(self, data: Any, human: str | None = None) -> None:
        """The command's result: kept for the one JSON object with --json (ts24_migrate.cli.main prints it
        when the command ends, with its exit code), else printed as the human text (or as JSON
        pretty-printed)."""
        from ts24_migrate.core.results import jsonable  # pydantic: not for --help

        data = jsonable(data)  # typed results (core.results) as the plain data they stand for
        if self.json_output:
            self.json_payload = data
        elif human is None:
            click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        else:
            click.echo(human)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()


def ledger_path(inventory: Inventory, site_id: str) -> Path:
    """Where a site's audit ledger lives: one append-only file per site."""
    return inventory.work_path / "ledger" / f"{site_id}.jsonl"


def default_inventory_path() -> Path:
    return Path(os.environ.get("TS24_INVENTORY", DEFAULT_INVENTORY))


pass_app = click.make_pass_decorator(App)


def interactive() -> bool:
    return sys.stderr.isatty()
