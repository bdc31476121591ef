"""`ts24-migrate load SITE`: load a site's legacy data into the new system."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ts24_migrate.runs.app import App, pass_app

from .outcome import stage_outcome
from .progress import table_progress
from .slots import command_slots

if TYPE_CHECKING:  # the load step loads the stage packages: only when the command runs
    from ts24_migrate.runs.load import LoadResult


@click.command("load")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Legacy rows per chunk; each chunk is one transaction and one ledger row.",
)
@pass_app
def load(app: App, site_id: str, chunk_rows: int) -> None:
    """Load SITE's mapped legacy tables into the new system (target database of the inventory).

    Rows are transformed, bulk-copied into staging and merged in chunks (at
    most --chunk-rows rows; dossier files also at most about 32 MiB of file
    content, so large attachments do not fill the memory), each recorded in
    the load ledger: a killed load re-run resumes where it stopped,
    and re-running a loaded site changes nothing. Rows the new system changed
    after the cut-over are not overwritten but reported as conflicts. Only reads
    the legacy database.

    \b
    Example:
      ts24-migrate -i sites.yaml load hn-01
      ts24-migrate -i sites.yaml --json load hn-01 --chunk-rows 20000 | jq .tables.HO_SO
    """
    from ts24_migrate.runs.load import load_step

    with stage_outcome(app, site_id) as outcome:
        with command_slots(app, site_id, target=True), table_progress(app, "loading") as progress:
            data = load_step(app, site_id, chunk_rows=chunk_rows, progress=progress)
        outcome.emit(data, _human(site_id, data))


def _human(site_id: str, data: LoadResult) -> str:
    lines = [
        f"site {site_id} loaded (run {data.run_id}, {data.seconds:.1f} s, "
        f"{data.chunks_loaded} chunks loaded, {data.chunks_skipped} already done)",
        f"  {'LEGACY TABLE':<16} {'TARGET':<16} {'READ':>9} {'LOADED':>9} {'REJECTED':>9} {'CONFLICTS':>9}",
    ]
    for name, t in data.tables.items():
        lines.append(
            f"  {name:<16} {t['target_table']:<16} {t['source_rows']:>9} {t['loaded']:>9} "
            f"{t['rejected']:>9} {t['conflicts']:>9}"
        )
        if t["rejects_by_reason"]:
            lines.append("      rejected: " + ", ".join(f"{code} {n}" for code, n in t["rejects_by_reason"].items()))
        if t.get("flags_by_code"):
            lines.append(
                "      loaded with flags: " + ", ".join(f"{code} {n}" for code, n in t["flags_by_code"].items())
            )
    lines.append(
        "accounting: " + ("read = loaded + rejected for every table" if data.accounting_ok else "DOES NOT HOLD")
    )
    return "\n".join(lines)


COMMANDS = [load]
