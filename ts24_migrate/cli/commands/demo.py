"""`ts24-migrate demo`: make a demo TS24 site and migrate it end to end (what `make demo` runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from ts24_migrate.core.errors import Ts24Error, UsageError, VerificationError
from ts24_migrate.runs.app import App, pass_app

from .demo_purge import add_demo_purge_people, retire_demo_site
from .migrate import migrate_site_now, via_prefect_option
from .outcome import site_outcome, verdict_of

DEMO_MARKER = ".ts24-demo"  # only a folder carrying this marker is ever replaced


def prepare_demo_folder(folder: Path) -> None:
    """Start from an empty folder; replace an earlier demo, never anything else."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARKER).exists():
            raise UsageError(f"{folder} exists and is not a demo folder made by ts24-migrate; choose another --folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("made by `ts24-migrate demo`; safe to delete\n", encoding="utf-8")


@click.command("demo")
@click.option(
    "--folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("demo-site"),
    show_default=True,
    help="Where the demo site, keys, backups and reports go (replaced if it is an earlier demo).",
)
@click.option("--site", "site_id", default="demo", show_default=True, help="Site id of the demo site.")
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    default=0.2,
    show_default=True,
    help="Size: 1.0 is about 2,000 dossiers (more than 0).",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--awkward-names", is_flag=True, help="Give some legacy tables and columns names that need quoting (see demo-data)."
)
@click.option(
    "--through",
    type=click.Choice(["migration", "purge"]),
    default="migration",
    show_default=True,
    help="purge: then drain the site and retire it (demo operator and approver keys), ending with "
    "its certificate of sanitization verified.",
)
@via_prefect_option
@pass_app
def demo(
    app: App, folder: Path, site_id: str, scale: float, seed: int, awkward_names: bool, through: str, via_prefect: bool
) -> None:
    """Make a demo TS24 site (legacy SQLite database with dirty data, attachment folder, a new
    system that already holds portal-side rows, custodian and signing keys, sites.yaml) and migrate
    it end to end as `migrate` does (--via-prefect: as the `migrate-site` Prefect flow). Prints
    where the reports are.

    \b
    Example:
      ts24-migrate demo
      ts24-migrate demo --folder /tmp/demo --scale 1 --via-prefect
      ts24-migrate demo --folder /tmp/odd-demo --awkward-names
      ts24-migrate demo --folder /tmp/retired-demo --scale 0.05 --through purge
    """
    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key

    from .demo_data import write_demo_inventory

    folder = folder.resolve()
    prepare_demo_folder(folder)
    try:
        identity = folder / "keys" / "custodian.age-identity"
        recipient = generate_custodian_identity(identity)
        generate_signing_key(folder / "keys" / "signing.key")
        inventory = write_demo_inventory(
            folder,
            site_id=site_id,
            seed=seed,
            scale=scale,
            backup_recipients=[recipient],
            signing_key=Path("keys/signing.key"),
            awkward_names=awkward_names,
        )
        if through == "purge":
            add_demo_purge_people(folder, inventory)
    except BaseException:
        # A half-made demo site is of no use to anyone: it goes, and the next run starts clean.
        shutil.rmtree(folder, ignore_errors=True)
        click.echo(f"the half-made demo folder {folder} was removed", err=True)
        raise
    click.echo(f"demo site {site_id!r} written to {folder}; migrating it ...", err=True)
    site_app = App(inventory, json_output=app.json_output)
    try:
        try:
            result = migrate_site_now(site_app, site_id, identity=identity, via_prefect=via_prefect)
        except Ts24Error as exc:
            # The demo site itself is whole; its reports say why the migration failed.
            try:
                outcome = site_outcome(site_app, site_id, verdict_of(exc))
            except Exception:
                outcome = None
            if outcome is not None:
                app.failed_outcome = outcome.to_dict()
                if not app.json_output:
                    click.echo(f"demo FAILED: {folder}\n{outcome.line()}")
            raise
        validation = result["validate"]
        report = validation.reports.html
        passed = validation.passed
        if through == "purge" and passed:
            click.echo(f"migration PASSED; draining and retiring site {site_id!r} ...", err=True)
            try:
                result["purge"] = retire_demo_site(site_app, folder, site_id, identity)
            except Ts24Error as exc:
                outcome = site_outcome(site_app, site_id, verdict_of(exc))
                app.failed_outcome = outcome.to_dict()
                if not app.json_output:
                    click.echo(f"demo FAILED: {folder}\n{outcome.line()}")
                raise
            passed = result["purge"]["certificate_verified"] and result["purge"]["state"] == "CERTIFIED"
            report = result["purge"]["certificate_html"]
        outcome = site_outcome(site_app, site_id, "PASSED" if passed else "FAILED", report)
    finally:
        site_app.close()
    app.emit(
        {"folder": str(folder), "inventory": str(inventory), **result, "outcome": outcome.to_dict()},
        _human(folder, inventory, result, outcome),
    )
    if result.get("purge") and not passed:
        raise VerificationError(
            f"demo site {site_id}: its certificate of sanitization does not verify: "
            f"{'; '.join(result['purge']['problems']) or 'the site is not CERTIFIED'}"
        )


def _human(folder: Path, inventory: Path, result: dict, outcome) -> str:
    from ts24_migrate.core.results import jsonable

    lines = [f"demo {outcome.verdict}: {folder}", f"  inventory: {inventory}"]
    for step, done in jsonable(result).items():
        if isinstance(done, dict):
            for kind, path in (done.get("reports") or {}).items():
                if kind in ("html", "data_docs"):
                    lines.append(f"  {step} report: {path}")
    try:
        shown = inventory.relative_to(Path.cwd())
    except ValueError:
        shown = inventory
    retired = result.get("purge")
    if retired:
        lines += [
            f"  certificate of sanitization: {retired['certificate']} ({retired['certificate_sha256']}): "
            + (
                "verified offline"
                if retired["certificate_verified"]
                else f"does NOT verify: {'; '.join(retired['problems'])}"
            )
        ]
    lines += [
        f"  audit ledger: {folder / 'work' / 'ledger'}",
        f"  the site's latest reports: {folder / 'work' / 'sites' / outcome.site_id / 'latest' / 'index.html'}",
        f"  try: ts24-migrate -i {shown} sites list",
        f"       ts24-migrate -i {shown} audit verify --site {outcome.site_id}",
        outcome.line(),
    ]
    return "\n".join(lines)


COMMANDS = [demo]
