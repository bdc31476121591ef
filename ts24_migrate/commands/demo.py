"""`ts24-migrate demo`: make a demo TS24 site and migrate it end to end (what `make demo` runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from ..app import App, pass_app
from ..errors import UsageError

DEMO_MARKER = ".ts24-demo"  # only a folder carrying this marker is ever replaced


def prepare_demo_folder(folder: Path) -> None:
    """Start from an empty folder; replace an earlier demo, never anything else."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARKER).exists():
            raise UsageError(f"{folder} exists and is not a demo folder made by ts24-migrate; "
                             "choose another --folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("made by `ts24-migrate demo`; safe to delete\n", encoding="utf-8")


@click.command("demo")
@click.option("--folder", type=click.Path(path_type=Path, file_okay=False), default=Path("demo-site"),
              show_default=True, help="Where the demo site, keys, backups and reports go (replaced if it "
                                      "is an earlier demo).")
@click.option("--site", "site_id", default="demo", show_default=True, help="Site id of the demo site.")
@click.option("--scale", type=float, default=0.2, show_default=True,
              help="Size: 1.0 is about 2,000 dossiers.")
@click.option("--seed", type=int, default=42, show_default=True)
@pass_app
def demo(app: App, folder: Path, site_id: str, scale: float, seed: int) -> None:
    """Make a demo TS24 site (legacy SQLite database with dirty data, attachment folder, a new
    system that already holds portal-side rows, custodian and signing keys, sites.yaml) and run the
    `migrate-site` Prefect flow on it end to end. Prints where the reports are.

    \b
    Example:
      ts24-migrate demo
      ts24-migrate demo --folder /tmp/demo --scale 1
    """
    from backups.keys import generate_custodian_identity, generate_signing_key
    from flows.migrate_site import migrate_site

    from .demo_data import write_demo_inventory

    folder = folder.resolve()
    prepare_demo_folder(folder)
    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(folder / "keys" / "signing.key")
    inventory = write_demo_inventory(folder, site_id=site_id, seed=seed, scale=scale,
                                     backup_recipients=[recipient], signing_key=Path("keys/signing.key"))
    click.echo(f"demo site {site_id!r} written to {folder}; running the migrate-site flow ...", err=True)
    result = migrate_site(site_id=site_id, inventory=str(inventory), custodian_identity=str(identity))
    app.emit({"folder": str(folder), "inventory": str(inventory), **result}, _human(folder, inventory, result))


def _human(folder: Path, inventory: Path, result: dict) -> str:
    lines = [f"demo done: {folder}", f"  inventory: {inventory}"]
    for step, outcome in result.items():
        if isinstance(outcome, dict):
            for kind, path in (outcome.get("reports") or {}).items():
                if kind in ("html", "data_docs"):
                    lines.append(f"  {step} report: {path}")
    try:
        shown = inventory.relative_to(Path.cwd())
    except ValueError:
        shown = inventory
    lines += [f"  audit ledger: {folder / 'work' / 'ledger'}",
              f"next: ts24-migrate -i {shown} sites list",
              f"      ts24-migrate -i {shown} audit verify --site demo"]
    return "\n".join(lines)


COMMANDS = [demo]
