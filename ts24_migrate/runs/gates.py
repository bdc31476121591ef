"""What each stage needs first: a stage refuses (exit 4) when what precedes it is missing.

Along the site's life (NEW -> ASSESSED -> EXTRACTED -> BACKED_UP ->
BACKUP_VERIFIED -> LOADED -> VALIDATED -> RECONCILING -> DRAINED):

| stage | needs first |
|---|---|
| backup | an assessment |
| backup verify, backup restore | a complete backup |
| load | a complete backup, verified at least by its signature and ciphertext hashes, whose latest check did not find it damaged |
| validate | a load (which needs the above) |
| reconcile run | a passing validation of the latest load |
| report | a validation with a verdict |
| reconcile verify-chain, restore-chain | a backup chain (a reconciliation) |

A refusal names what is missing and the command that provides it, who runs
it, and why: the same `next_step` the outcome lines print. Nothing is
recorded for a refused stage; it did not run.

Example::

    facts = require_loadable_backup(app, "hn-01")   # GateRefused when the backup is missing or unchecked
"""

from __future__ import annotations

from backups.catalog import list_backups
from ts24_migrate.core.errors import GateRefused
from ts24_migrate.runs.app import App

from .site_life import NextStep, SiteFacts, Verification, next_step


class StageRefused(GateRefused):
    """A stage refused because the step before it is missing; `.next_step` provides it."""

    def __init__(self, message: str, facts: SiteFacts, step: NextStep):
        super().__init__(f"{message}; first, {step.instruction(facts.inventory)}")
        self.facts, self.next_step = facts, step


def _refuse(facts: SiteFacts, stage: str, what: str) -> StageRefused:
    return StageRefused(f"{stage} of site {facts.site_id} refused: {what}", facts, next_step(facts))


def refuse(app: App, site_id: str, stage: str, what: str) -> StageRefused:
    """A refusal of `stage` for a reason a stage module found itself (e.g. no backup chain yet)."""
    return _refuse(SiteFacts.read(app, site_id), stage, what)


def require_assessed(app: App, site_id: str) -> SiteFacts:
    facts = SiteFacts.read(app, site_id)
    if not facts.assessed:
        raise _refuse(
            facts, "backup", "the site has not been assessed (the assessment names every table the backup must hold)"
        )
    return facts


def require_backup(app: App, site_id: str, stage: str) -> None:
    """A complete backup is in the backup folder (a custodian may verify one on a machine of their
    own, with a control store that never saw the backup run)."""
    if not any(e.status == "complete" for e in list_backups(app.inventory.backup_path, site_id)):
        facts = SiteFacts.read(app, site_id)
        raise _refuse(facts, stage, f"the site has no complete backup under {app.inventory.backup_path / site_id}")


def require_loadable_backup(app: App, site_id: str) -> SiteFacts:
    facts = SiteFacts.read(app, site_id)
    backup = facts.backup
    if backup is None:
        raise _refuse(
            facts,
            "load",
            "the site has no complete backup, and nothing is loaded before the legacy data is safely backed up",
        )
    if backup.verification is Verification.NONE:
        raise _refuse(
            facts,
            "load",
            f"backup {backup.backup_id} has not been verified (at least its signature and ciphertext hashes)",
        )
    if backup.verification is Verification.DAMAGED:
        error = backup.verification_run.error if backup.verification_run else None
        raise _refuse(
            facts,
            "load",
            f"backup {backup.backup_id} failed its latest verification" + (f" ({error[:200]})" if error else ""),
        )
    return facts


def require_loaded(app: App, site_id: str) -> SiteFacts:
    facts = SiteFacts.read(app, site_id)
    if facts.backup is None or facts.load is None:
        what = "the site has no complete backup" if facts.backup is None else "the site is not loaded"
        raise _refuse(facts, "validate", what)
    return facts


def require_validated(app: App, site_id: str) -> SiteFacts:
    """Reconciliation carries dossiers over on top of a load that a validation passed."""
    facts = SiteFacts.read(app, site_id)
    if facts.validation_passed and facts.validation_is_current and facts.backup is not None:
        return facts
    if facts.load is None:
        what = "the site is not loaded"
    elif facts.backup is None:
        what = "the site has no complete backup (its backup chain starts on one)"
    elif facts.validation is None:
        what = "the site's load has not been validated"
    elif not facts.validation_is_current:
        what = "the site was loaded again after its latest validation"
    else:
        what = f"its latest validation (run {facts.validation.run_id}) failed"
    raise _refuse(facts, "reconcile", what)


def require_verdict(app: App, site_id: str) -> SiteFacts:
    """`report` rebuilds a validation report: there must be a validation with a verdict."""
    facts = SiteFacts.read(app, site_id)
    if facts.validation is None:
        raise _refuse(
            facts,
            "report",
            f"site {site_id} has no validation with a verdict yet (state "
            f"{facts.state.value}), so there is no report to rebuild",
        )
    return facts
