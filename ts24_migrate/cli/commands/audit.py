"""`ts24-migrate audit ...`: check and read a site's audit ledger, offline.

`verify` needs only the ledger file and the public key, so an auditor can run
it on a copy, away from the pipeline and its secrets.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ts24_migrate.core.errors import ConfigError, UsageError, VerificationError
from ts24_migrate.runs.app import App, pass_app

SHOWN_PROBLEMS = 50  # in human output; --json lists them all


def site_ledger_path(app: App, site_id: str) -> Path:
    """Where the pipeline keeps a site's ledger: WORK/ledger/SITE.jsonl."""
    app.site(site_id)  # a clear error for an unknown site
    return app.ledger_path(site_id)


def inventory_public_key(app: App) -> Path:
    key_path = app.inventory.signing_key_path
    if key_path is None:
        raise ConfigError(
            "the inventory names no signing_key; pass --public-key FILE_OR_BASE64", path=str(app.inventory_path)
        )
    return key_path.with_suffix(".pub")


def _ledger_argument(app: App, ledger_file: Path | None, site: str | None) -> Path:
    if ledger_file is None and site is None:
        raise UsageError("give a LEDGER_FILE, or --site SITE to use the inventory's ledger of that site")
    path = ledger_file if ledger_file is not None else site_ledger_path(app, str(site))
    if not path.exists() and not path.with_name(path.name + ".head").exists():
        raise UsageError(f"ledger file {path} does not exist")
    return path


@click.group("audit")
def audit() -> None:
    """The audit ledger: an append-only, hash-chained, signed record of every stage."""


@audit.command("verify")
@click.argument("ledger_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--site", help="Verify this site's ledger from the inventory (and its public key).")
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    metavar="FILE_OR_BASE64",
    help="Trusted Ed25519 public key: a .pub file or base64 text; repeat during a key change.",
)
@click.option(
    "--expect-head",
    metavar="HASH",
    help="A head hash recorded elsewhere (e.g. in a certificate) that must be in the ledger.",
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@pass_app
def verify(
    app: App,
    ledger_file: Path | None,
    site: str | None,
    public_keys: tuple[str, ...],
    expect_head: str | None,
    json_output: bool,
) -> None:
    """Check a ledger offline: every event's hash, signature and place in the chain.

    Exit 0 when intact; exit 1 listing each problem with the event's seq and
    line (edited, removed, inserted or reordered events, a cut file, an
    unknown key).

    \b
    Example:
      ts24-migrate audit verify work/ledger/hn-01.jsonl --public-key keys/signing.pub
      ts24-migrate -i sites.yaml audit verify --site hn-01 --json
    """
    from ts24_migrate.runs.ledger import check_ledger

    app.json_output = app.json_output or json_output
    path = _ledger_argument(app, ledger_file, site)
    if public_keys:
        keys: list[str | Path] = list(public_keys)
    elif site:
        keys = [inventory_public_key(app)]
    else:
        raise UsageError("give --public-key FILE_OR_BASE64 (or --site SITE to use the inventory's key)")
    result = check_ledger(path, keys, expect_head)
    lines = [result.summary()]
    lines += [f"  {problem}" for problem in result.problems[:SHOWN_PROBLEMS]]
    if len(result.problems) > SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(result.problems) - SHOWN_PROBLEMS} more (use --json to list all)")
    app.emit(result.to_dict(), "\n".join(lines))
    if not result.ok:
        raise VerificationError(f"ledger {path}: {len(result.problems)} problem(s); it is not intact")


@audit.command("show")
@click.argument("ledger_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--site", help="Only this site's events; without LEDGER_FILE, the site's ledger from the inventory.")
@click.option("--tail", type=click.IntRange(min=1), help="Only the last N events.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@pass_app
def show(app: App, ledger_file: Path | None, site: str | None, tail: int | None, json_output: bool) -> None:
    """List a ledger's events (seq, time, site, stage, event, run, figures).

    Reading checks no hash or signature; run `audit verify` for that. Lines
    that are not events are shown as such, never skipped.

    \b
    Example:
      ts24-migrate audit show work/ledger/hn-01.jsonl --tail 20
      ts24-migrate -i sites.yaml audit show --site hn-01 --json
    """
    from ts24_migrate.runs.ledger import ledger_rows

    app.json_output = app.json_output or json_output
    path = _ledger_argument(app, ledger_file, site)
    rows = ledger_rows(path, site, tail)
    lines = [f"{'SEQ':>6} {'TIME (UTC)':<20} {'SITE':<12} {'STAGE':<10} {'EVENT':<24} {'RUN':<10} DATA"]
    for row in rows:
        if "problem" in row:
            lines.append(f"{'?':>6} line {row['line']}: {row['problem']}")
            continue
        figures = json.dumps(row["data"], ensure_ascii=False, separators=(",", ":"))
        lines.append(
            f"{row['seq']:>6} {row['time'][:19]:<20} {row['site']:<12} {row['stage']:<10} "
            f"{row['event']:<24} {(row['run_id'] or '-')[:8]:<10} {figures}"
        )
    app.emit({"ledger": str(path), "events": list(rows)}, "\n".join(lines))


COMMANDS = [audit]
