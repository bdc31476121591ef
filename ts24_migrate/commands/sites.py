"""`ts24-migrate sites ...`: the inventory and each site's state."""

from __future__ import annotations

import click

from ..app import App, pass_app


@click.group("sites")
def sites() -> None:
    """The sites of the inventory."""


@sites.command("list")
@pass_app
def list_sites(app: App) -> None:
    """List the inventory's sites with their state and cut-over date.

    \b
    Example:
      ts24-migrate -i sites.yaml sites list --json
    """
    inventory = app.inventory
    store = app.control_store
    rows = [{"site": s.id, "office": s.office, "name": s.name, "cutover": s.cutover.isoformat(),
             "state": store.state(s.id).value, "legacy": s.legacy,
             "attachments": str(inventory.attachments_path(s)) if s.attachments else None}
            for s in inventory.sites]
    lines = [f"{'SITE':<16} {'OFFICE':<6} {'CUT-OVER':<10} {'STATE':<22} LEGACY (secret reference)"]
    lines += [f"{r['site']:<16} {r['office']:<6} {r['cutover']:<10} {r['state']:<22} {r['legacy']}" for r in rows]
    app.emit({"sites": rows}, "\n".join(lines))


COMMANDS = [sites]
