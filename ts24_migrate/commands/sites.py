"""`ts24-migrate sites ...`: the inventory and each site's state."""

from __future__ import annotations

import click

from ..app import App, pass_app
from ..steps.site_life import SiteFacts, next_step


@click.group("sites")
def sites() -> None:
    """The sites of the inventory."""


@sites.command("list")
@pass_app
def list_sites(app: App) -> None:
    """List the inventory's sites with their state, cut-over date and next step (who runs what:
    a state never moves back, so the next step is what tells, e.g., that a validated site's latest
    validation failed).

    \b
    Example:
      ts24-migrate -i sites.yaml sites list --json
    """
    inventory = app.inventory
    rows, shown = [], []
    for s in inventory.sites:
        facts = SiteFacts.read(app, s.id)
        step = next_step(facts)
        rows.append({"site": s.id, "office": s.office, "name": s.name, "cutover": s.cutover.isoformat(),
                     "state": facts.state.value, "legacy": s.legacy,
                     "attachments": str(inventory.attachments_path(s)) if s.attachments else None,
                     "next": step.to_dict(app.inventory_path)})
        shown.append(f"{step.who}: {' '.join(a for a in step.args if a != s.id)} ({step.why})")
    lines = [f"{'SITE':<16} {'OFFICE':<6} {'CUT-OVER':<10} {'STATE':<16} {'LEGACY (secret reference)':<30} NEXT"]
    lines += [f"{r['site']:<16} {r['office']:<6} {r['cutover']:<10} {r['state']:<16} {r['legacy']:<30} {step}"
              for r, step in zip(rows, shown)]
    app.emit({"sites": rows}, "\n".join(lines))


COMMANDS = [sites]
