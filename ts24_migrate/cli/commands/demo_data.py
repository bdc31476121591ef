"""`ts24-migrate demo-data` and `demo-advance`: make a demo TS24 site, and move its world on.

`write_demo_inventory` builds a complete demo site folder (legacy SQLite,
attachments, new-system SQLite, sites.yaml, secrets, truth file); the
`demo` command calls it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ts24_migrate.core.errors import ConfigError, UsageError
from ts24_migrate.core.secrets import Secret, redact_url
from ts24_migrate.runs.app import App, interactive, pass_app

if TYPE_CHECKING:  # the generator and SQLAlchemy load when a command runs, not for --help
    from sqlalchemy.engine import Engine

    from ts24_migrate.demo import DemoTruth
    from ts24_migrate.demo.writer import Progress

DEFAULT_CUTOVER = dt.date(2025, 7, 1)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def _writable_legacy(url: Secret) -> Engine:
    from ts24_migrate.core.db import check_reachable, legacy_engine

    engine = legacy_engine(url, read_only=False)  # the demo writes the "legacy" site
    check_reachable(engine, what="legacy database", url=url)
    return engine


def _legacy_for_sqlite(path: Path) -> Engine:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)  # db.legacy_engine opens only existing SQLite files
    return _writable_legacy(Secret(_sqlite_url(path)))


def _url_from_env(name: str | None, what: str) -> Secret:
    value = os.environ.get(name) if name else None
    if not value:
        raise ConfigError(f"{what}: environment variable {name} is not set")
    return Secret(value.strip())


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[Progress | None]:
    """Rich progress per table on an interactive terminal; nothing otherwise."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
    from rich.progress import Progress as RichProgress

    tasks: dict[str, TaskID] = {}
    with RichProgress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), transient=True) as bars:

        def report(table: str, rows: int, expected: int | None) -> None:
            if table not in tasks:
                tasks[table] = bars.add_task(table, total=expected)
            bars.update(tasks[table], completed=rows, total=max(rows, expected or 0))

        yield report


def write_demo_inventory(
    folder: Path,
    *,
    site_id: str = "demo",
    office_code: str = "01",
    seed: int = 42,
    scale: float = 0.2,
    cutover: dt.date = DEFAULT_CUTOVER,
    backup_recipients: Sequence[str] = (),
    signing_key: Path | None = None,
    progress: Progress | None = None,
    awkward_names: bool = False,
) -> Path:
    """Write a complete demo site folder and return its `sites.yaml`.

    Layout (relative to `folder`)::

        sites.yaml                      the inventory (another call adds another site)
        secrets/<site>.legacy.url       legacy connection URL, mode 0600
        secrets/target.url              the new system's URL, mode 0600
        legacy/<site>.sqlite            the TS24 database
        attachments/<site>/             its attachment folder
        new-system/target.sqlite        the new system, with its portal-side rows
        truth/<site>.truth.json         what was planted (DemoTruth)

    `awkward_names`: some legacy tables and columns get names that need quoting
    (demo.awkward_names).
    """
    import yaml

    from ts24_migrate.core.config import load_inventory
    from ts24_migrate.core.db import store_engine
    from ts24_migrate.demo import generate_site

    folder = Path(folder).resolve()
    inventory_path = folder / "sites.yaml"
    inventory = yaml.safe_load(inventory_path.read_text(encoding="utf-8")) if inventory_path.exists() else None
    if inventory is not None and any(s.get("id") == site_id for s in inventory.get("sites") or []):
        raise UsageError(f"{inventory_path} already has a site {site_id!r}")
    legacy_path = folder / "legacy" / f"{site_id}.sqlite"
    target_path = folder / "new-system" / "target.sqlite"
    attachments = folder / "attachments" / site_id
    if legacy_path.exists():
        raise UsageError(f"{legacy_path} already exists; the demo never writes over a database")

    legacy = _legacy_for_sqlite(legacy_path)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    target = store_engine(Secret(_sqlite_url(target_path)))
    try:
        truth = generate_site(
            legacy,
            attachments,
            target=target,
            seed=seed,
            scale=scale,
            cutover=cutover,
            site_id=site_id,
            office_code=office_code,
            progress=progress,
            awkward_names=awkward_names,
        )
    finally:
        legacy.dispose()
        target.dispose()
    truth.write(folder / "truth" / f"{site_id}.truth.json")

    _write_secret(folder / "secrets" / f"{site_id}.legacy.url", _sqlite_url(legacy_path))
    _write_secret(folder / "secrets" / "target.url", _sqlite_url(target_path))
    site = {
        "id": site_id,
        "office": office_code,
        "name": f"Demo TS24 site {site_id}",
        "legacy": f"file:secrets/{site_id}.legacy.url",
        "attachments": f"attachments/{site_id}",
        "cutover": cutover.isoformat(),
        "backup_recipients": list(backup_recipients),
    }
    if inventory is None:
        inventory = {
            "version": 1,
            "work_dir": "work",
            "backup_dir": "backups",
            "target": "file:secrets/target.url",
            "sites": [],
        }
    if signing_key is not None:
        inventory["signing_key"] = str(signing_key)
    inventory["sites"] = [*(inventory.get("sites") or []), site]
    inventory_path.write_text(yaml.safe_dump(inventory, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_inventory(inventory_path)  # what we wrote must be a valid inventory
    return inventory_path


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)


@click.command("demo-data")
@click.option(
    "--legacy-sqlite",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the legacy site into this new SQLite file.",
)
@click.option(
    "--legacy-url-env",
    metavar="NAME",
    help="Environment variable holding the URL of an empty legacy database (e.g. MariaDB over ODBC).",
)
@click.option(
    "--attachments",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Empty or new folder for the site's attachment files.",
)
@click.option(
    "--target-sqlite",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also plant the new system's side in this SQLite file.",
)
@click.option("--target-url-env", metavar="NAME", help="Environment variable holding the new system's URL.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--scale", type=float, default=1.0, show_default=True, help="1.0 is about 2,000 dossiers; 500 about a million."
)
@click.option(
    "--cutover",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=DEFAULT_CUTOVER.isoformat(),
    show_default=True,
    help="Cut-over date (YYYY-MM-DD).",
)
@click.option("--site-id", default="demo", show_default=True)
@click.option("--office", "office_code", default="01", show_default=True, help="2- or 4-digit office code.")
@click.option("--truth", type=click.Path(path_type=Path, dir_okay=False), help="Write the truth file (JSON) here.")
@click.option(
    "--awkward-names",
    is_flag=True,
    help="Give some legacy tables and columns names that need quoting (spaces, reserved words, "
    "quotes, dots, Vietnamese letters, leading digits), as hand-configured servers have.",
)
@pass_app
def demo_data(
    app: App,
    legacy_sqlite: Path | None,
    legacy_url_env: str | None,
    attachments: Path,
    target_sqlite: Path | None,
    target_url_env: str | None,
    seed: int,
    scale: float,
    cutover: dt.datetime,
    site_id: str,
    office_code: str,
    truth: Path | None,
    awkward_names: bool,
) -> None:
    """Generate a deterministic demo TS24 site with every kind of dirty data.

    The legacy database must be empty; database URLs are read from environment
    variables (never from the command line), and passwords are never printed.

    \b
    Example:
      ts24-migrate demo-data --legacy-sqlite demo/legacy.sqlite --attachments demo/files \\
          --target-sqlite demo/target.sqlite --scale 0.2 --truth demo/truth.json
      TS24_LEGACY_URL='mysql+pyodbc://...' ts24-migrate demo-data --legacy-url-env TS24_LEGACY_URL \\
          --attachments demo/files --seed 7
      ts24-migrate demo-data --legacy-sqlite odd/legacy.sqlite --attachments odd/files --awkward-names
    """
    from ts24_migrate.core.db import check_reachable, store_engine
    from ts24_migrate.demo import generate_site

    if (legacy_sqlite is None) == (legacy_url_env is None):
        raise UsageError("give exactly one of --legacy-sqlite FILE or --legacy-url-env NAME")
    if target_sqlite is not None and target_url_env is not None:
        raise UsageError("give at most one of --target-sqlite FILE or --target-url-env NAME")
    if legacy_sqlite is not None:
        legacy_url = Secret(_sqlite_url(legacy_sqlite))
        legacy = _legacy_for_sqlite(legacy_sqlite)
    else:
        legacy_url = _url_from_env(legacy_url_env, "--legacy-url-env")
        legacy = _writable_legacy(legacy_url)
    target = target_url = None
    if target_sqlite is not None or target_url_env is not None:
        target_url = (
            Secret(_sqlite_url(target_sqlite))
            if target_sqlite is not None
            else _url_from_env(target_url_env, "--target-url-env")
        )
        target = store_engine(target_url)
        check_reachable(target, what="target database", url=target_url)
    context = click.get_current_context()
    context.call_on_close(legacy.dispose)
    if target is not None:
        context.call_on_close(target.dispose)

    with _progress_bars(interactive() and not app.json_output and scale >= 5) as progress:
        result = generate_site(
            legacy,
            attachments,
            target=target,
            seed=seed,
            scale=scale,
            cutover=cutover.date(),
            site_id=site_id,
            office_code=office_code,
            progress=progress,
            awkward_names=awkward_names,
        )
    if truth is not None:
        result.write(truth)
    app.emit(_summary(result, legacy_url, target_url, attachments, truth), _human_summary(result, truth))


def _summary(
    truth: DemoTruth, legacy_url: Secret, target_url: Secret | None, attachments: Path, truth_path: Path | None
) -> dict:
    return {
        "site_id": truth.site_id,
        "legacy": redact_url(legacy_url.reveal()),
        "target": redact_url(target_url.reveal()) if target_url else None,
        "attachments": str(attachments),
        "truth": str(truth_path) if truth_path else None,
        "tables": {name: info["rows"] for name, info in truth.tables.items()},
        "defects": len(truth.defects),
        "defect_counts": truth.defect_counts,
        "in_flight_dossiers": truth.in_flight_dossiers,
        "received_after_cutover": len(truth.received_after_cutover),
    }


def _human_summary(truth: DemoTruth, truth_path: Path | None) -> str:
    lines = [f"demo site {truth.site_id} (seed {truth.seed}, scale {truth.scale}, cut-over {truth.cutover}):"]
    lines += [f"  {name:<16} {info['rows']:>9} rows  ({info['role']})" for name, info in truth.tables.items()]
    lines.append(
        f"  {len(truth.defects)} planted defects of {len(truth.defect_counts)} kinds; "
        f"{truth.in_flight_dossiers} dossiers in flight; "
        f"{len(truth.received_after_cutover)} received after cut-over"
    )
    if truth.has_target:
        lines.append(
            f"  new system: {len(truth.reregistered)} re-registrations, {truth.portal_dossiers} portal "
            f"dossiers, {len(truth.target_conflicts)} conflicting units"
        )
    if truth_path is not None:
        lines.append(f"  truth file: {truth_path}")
    return "\n".join(lines)


@click.command("demo-advance")
@click.argument("site_id")
@click.option("--days", type=click.IntRange(1, 3650), required=True, help="How many days the world moves on.")
@click.option("--drain", is_flag=True, help="Finish every in-flight dossier (and accept no new receipt).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--truth", type=click.Path(path_type=Path, dir_okay=False), help="Write what changed (JSON) here.")
@pass_app
def demo_advance(app: App, site_id: str, days: int, drain: bool, seed: int, truth: Path | None) -> None:
    """Move a demo site's world forward: dossiers progress on TS24, one forbidden
    receipt arrives, more units re-register on the new system.

    This writes to the legacy database (it simulates TS24 itself working): use
    it on demo sites only.

    \b
    Example:
      ts24-migrate -i demo/sites.yaml demo-advance demo --days 7
      ts24-migrate -i demo/sites.yaml --json demo-advance demo --days 1 --drain
    """
    from ts24_migrate.demo.advance import advance_site

    site = app.site(site_id)
    legacy = app.legacy_engine(site, read_only=False)
    target = app.target_engine()
    result = advance_site(legacy, target, app.inventory.attachments_path(site), days=days, seed=seed, drain=drain)
    if truth is not None:
        result.write(truth)
    human = (
        f"site {site_id}: {result.started_at:%Y-%m-%d} -> {result.world_now:%Y-%m-%d}; "
        f"{len(result.changed_dossiers)} dossiers changed, {len(result.finished_dossiers)} finished, "
        f"{len(result.new_history_ids)} history rows; "
        f"forbidden receipt: {result.forbidden_receipt or 'none'}; "
        f"{len(result.new_reregistrations)} new re-registrations; {result.in_flight_after} still in flight"
    )
    app.emit(result.to_dict(), human)


COMMANDS = [demo_data, demo_advance]
