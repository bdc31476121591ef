"""The daily check of a site: its backup chain and its audit ledger, verified without any key.

What `reconcile verify-chain` and `audit verify` check, for one site, recorded
as a `check` run in the control store: each manifest's signature and
arithmetic, each increment's link to its parent, the SHA-256 of every
encrypted part (the full chain once the site is reconciled, else the backup
the latest backup run made), and every ledger event's hash, signature and
place. A problem fails the run: fleet status shows the site blocked until a
later check passes. Nothing is decrypted; the legacy server and the target are
not touched, so the check takes no concurrency slot.

The ledger is verified before anything is appended to it; the check's own
events are appended only to a ledger that verifies (a damaged one is left as
it was found, for whoever investigates).

Example::

    result = check_step(app, "hn-01")     # VerificationError when anything does not verify
    result.chain.parts_checked
"""

from __future__ import annotations

from typing import Literal

from audit.verify import verify_ledger
from backups.chain import backup_folder, verify_chain
from backups.manifest import read_manifest
from reconcile.state import ReconcileState
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.stage_runs import stage_run
from ts24_migrate.runs.app import App
from ts24_migrate.runs.fleet_status import CHECK

from .backup import trusted_public_key

PROBLEMS_KEPT = 20  # per check, in the run's figures; the count is always complete


class ChainCheck(StageResult):
    checked: Literal["chain", "backup", "nothing"]  # the reconciled chain, else the latest backup
    backups: int
    parts_checked: int
    ok: bool = True


class LedgerCheck(StageResult):
    ok: bool
    events: int
    head_hash: str | None


class CheckFigures(StageResult):
    """What a `check` run records as its figures."""

    ok: bool
    problem_count: int
    problems: list[str]  # the first PROBLEMS_KEPT
    chain: ChainCheck
    ledger: LedgerCheck


class CheckResult(StageResult):
    """What check_step returns: the run and its figures (CheckFigures)."""

    run_id: str
    site_id: str
    ok: bool
    problem_count: int
    problems: list[str]
    chain: ChainCheck
    ledger: LedgerCheck


def _chain_problems(app: App, site_id: str, public_key: str) -> tuple[ChainCheck, list[str]]:
    """The chain reconcile built, or before any reconciliation the backup of the latest backup run."""
    links = ReconcileState(app.control_store.engine).chain(site_id)
    backup_root = app.inventory.backup_path
    what: Literal["chain", "backup"]
    if links:
        folders = [backup_folder(backup_root, site_id, link) for link in links]
        what = "chain"
    else:
        run = app.control_store.latest_run(site_id, "backup")
        backup_id = run.figures.get("backup_id") if run else None
        if not backup_id:
            return ChainCheck(checked="nothing", backups=0, parts_checked=0), []
        folders, what = [backup_root / site_id / backup_id], "backup"
    manifests, problems = [], []
    for folder in folders:
        try:
            manifests.append(read_manifest(folder))
        except VerificationError as exc:  # a manifest gone or unreadable is itself the finding
            problems.append(str(exc))
    if not problems:
        report = verify_chain(manifests, public_key_b64=public_key, links=links or None, ciphertext="all")
        problems = list(report.problems)
        parts = report.parts_checked
    else:
        parts = 0
    return ChainCheck(checked=what, backups=len(folders), parts_checked=parts, ok=not problems), problems


def check_step(app: App, site_id: str) -> CheckResult:
    """Verify the site's backup chain and audit ledger; record a `check` run; raise
    VerificationError (after recording) when anything does not verify."""
    app.site(site_id)
    public_key = trusted_public_key(app, None)
    ledger_file = app.ledger_path(site_id)
    ledger = (
        verify_ledger(ledger_file, [public_key])
        if ledger_file.exists() or ledger_file.with_name(ledger_file.name + ".head").exists()
        else None
    )
    chain, chain_problems = _chain_problems(app, site_id, public_key)
    problems = [f"backup: {p}" for p in chain_problems]
    problems += [f"ledger: {p}" for p in (ledger.problems if ledger else [])]
    figures = CheckFigures(
        ok=not problems,
        problem_count=len(problems),
        problems=problems[:PROBLEMS_KEPT],
        chain=chain,
        ledger=(
            LedgerCheck(ok=ledger.ok, events=ledger.events, head_hash=ledger.head_hash)
            if ledger
            else LedgerCheck(ok=True, events=0, head_hash=None)
        ),
    )
    usable_ledger = app.ledger(site_id) if ledger is None or ledger.ok else None
    with stage_run(app.control_store, usable_ledger, site_id, CHECK) as run:
        run.figures.update(figures.to_dict())
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise VerificationError(f"site {site_id}: the daily check found {problems[0]}{more}", problems=problems)
    return CheckResult(run_id=run.run_id, site_id=site_id, **dict(figures))


def sites_to_check(app: App) -> list[str]:
    """Sites with something to check: a ledger, or a backup run."""
    return [
        s.id
        for s in app.inventory.sites
        if app.ledger_path(s.id).exists() or app.control_store.latest_run(s.id, "backup") is not None
    ]
