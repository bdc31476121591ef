"""Where a site stands in its life, and what comes next (and who does it).

`SiteFacts.read` gathers, from the control store and the backup folder, what
every stage needs to know about the ones before it: assessed or not, the
latest backup and how far it was verified, the latest load, validation and
reconciliation. `next_step` turns those facts into the one command that moves
the site on; gates (steps.gates) refuse a stage with that same command, and
every outcome line, refusal and `latest/` index page prints it, so what the
tool advises is always what the site needs next.

Example::

    facts = SiteFacts.read(app, "hn-01")
    step = next_step(facts)
    step.who, step.command(app)      # ("IT", "ts24-migrate -i sites.yaml load hn-01")
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backups.catalog import list_backups
from ts24_migrate.core.control_store import ControlStore, RunRecord, SiteState
from ts24_migrate.runs.app import App

from .purge_life import PurgeFacts

VERIFY_STAGE = "verify-backup"
IDENTITY_PLACEHOLDER = "IDENTITY_FILE"  # a custodian's age identity: only the custodian has it
KEY_PLACEHOLDER = "YOUR_KEY"  # a person's own Ed25519 signing key (operator or approver)
# What the person recording the media sanitization and the handover fills in.
SERIAL_PLACEHOLDER, METHOD_PLACEHOLDER, TOOL_PLACEHOLDER, REPORT_PLACEHOLDER = (
    "DISK_SERIAL",
    "SANITIZATION_METHOD",
    "TOOL_AND_VERSION",
    "TOOL_REPORT_FILE",
)
RECEIVER_PLACEHOLDER = "RECEIVER_NAME"
PLACEHOLDERS = (
    IDENTITY_PLACEHOLDER,
    KEY_PLACEHOLDER,
    SERIAL_PLACEHOLDER,
    METHOD_PLACEHOLDER,
    TOOL_PLACEHOLDER,
    REPORT_PLACEHOLDER,
    RECEIVER_PLACEHOLDER,
)
RETIREMENT_STATES = (SiteState.FINAL_BACKUP_VERIFIED, SiteState.PURGE_APPROVED, SiteState.PURGED, SiteState.CERTIFIED)


class Verification(str, enum.Enum):
    """How far a backup was verified, from its verify-backup runs."""

    NONE = "never verified"
    CHECKED = "signature and ciphertext hashes checked (not decrypted)"
    DECRYPTED = "decrypted and recounted by a custodian"
    DAMAGED = "its latest verification found it damaged"


def backup_verification(
    store: ControlStore, site_id: str, backup_id: str | None
) -> tuple[Verification, RunRecord | None]:
    """The verification state of a backup and the run that decides it.

    Only runs that checked the backup count: a run stopped by a wrong key, an
    unreadable identity or an unreachable folder records no backup id, so an
    operator's mistake never counts as a verdict. A passing check stands until a
    later check finds the backup damaged; only a decrypting check after that
    makes it verified again (as validation.report_figures.backup_verification
    reads it).
    """
    return verification_of(store.runs(site_id, VERIFY_STAGE), backup_id)


def verification_of(verify_runs: list[RunRecord], backup_id: str | None) -> tuple[Verification, RunRecord | None]:
    """backup_verification from the site's verify-backup runs, oldest first (fleet status reads
    them for every site at once)."""
    runs = [
        r
        for r in verify_runs
        if r.outcome in ("succeeded", "failed") and backup_id and r.figures.get("backup_id") == backup_id
    ]
    passed = [i for i, r in enumerate(runs) if r.outcome == "succeeded"]
    decrypted = [i for i in passed if runs[i].figures.get("mode") == "decrypted"]
    damaged = [i for i, r in enumerate(runs) if r.outcome == "failed" and r.figures.get("problems")]
    last_damaged = damaged[-1] if damaged else -1
    if damaged and (not passed or passed[-1] < last_damaged):
        return Verification.DAMAGED, runs[last_damaged]
    if decrypted and decrypted[-1] > last_damaged:
        return Verification.DECRYPTED, runs[decrypted[-1]]
    if passed:
        return Verification.CHECKED, runs[passed[-1]]
    return Verification.NONE, None


@dataclass(frozen=True)
class BackupFacts:
    backup_id: str
    backup_dir: Path
    run: RunRecord  # the backup run that made (or reused) it
    verification: Verification
    verification_run: RunRecord | None


@dataclass(frozen=True)
class SiteFacts:
    site_id: str
    state: SiteState
    inventory: Path  # as the operator gave it: suggested commands name it
    assessed: bool
    backup: BackupFacts | None  # the latest backup run's backup, if it is complete on disk
    incomplete_backups: list[str] = field(default_factory=list)  # resumable, by id
    load: RunRecord | None = None  # the latest successful load
    validation: RunRecord | None = None  # the latest validation with a verdict
    reconcile: RunRecord | None = None  # the latest successful reconciliation
    purge: PurgeFacts = field(default_factory=PurgeFacts)  # plan, approvals, certificate, addenda
    ledger: Path | None = None  # the site's audit ledger (the auditor's certificate check names it)
    backup_root: Path | None = None

    @classmethod
    def read(cls, app: App, site_id: str) -> SiteFacts:
        app.site(site_id)  # a clear error for an unknown site
        store = app.control_store
        backup = None
        listings = list_backups(app.inventory.backup_path, site_id)
        complete = {e.backup_id: e.path for e in listings if e.status == "complete"}
        backup_run = store.latest_run(site_id, "backup")
        backup_id = backup_run.figures.get("backup_id") if backup_run else None
        if backup_run is not None and backup_id in complete:
            verification, verified_by = backup_verification(store, site_id, backup_id)
            backup = BackupFacts(backup_id, complete[backup_id], backup_run, verification, verified_by)
        validation = next((r for r in reversed(store.runs(site_id, "validate")) if "verdict" in r.figures), None)
        return cls(
            site_id,
            store.state(site_id),
            app.inventory_path,
            assessed=store.latest_run(site_id, "assess") is not None,
            backup=backup,
            incomplete_backups=[e.backup_id for e in listings if e.status == "incomplete"],
            load=store.latest_run(site_id, "load"),
            validation=validation,
            reconcile=store.latest_run(site_id, "reconcile"),
            purge=PurgeFacts.read(app, site_id),
            ledger=app.ledger_path(site_id),
            backup_root=app.inventory.backup_path,
        )

    @property
    def validation_passed(self) -> bool:
        return bool(self.validation and self.validation.figures.get("passed"))

    @property
    def validation_is_current(self) -> bool:
        """The latest verdict judged the latest load (a load run again since needs a new verdict)."""
        sources = (self.validation.figures.get("sources") or {}) if self.validation else {}
        return self.load is not None and sources.get("load") == self.load.run_id


@dataclass(frozen=True)
class NextStep:
    """One command that moves the site on, who runs it, and why; `args` empty when none is due."""

    who: str  # "IT", "custodian", "approver" or "auditor"
    args: tuple[str, ...]
    why: str

    def command(self, inventory: Path | str) -> str:
        if not self.args:
            return ""
        return " ".join(["ts24-migrate", "-i", shown_inventory(Path(inventory)), *self.args])

    def text(self, inventory: Path | str) -> str:
        command = self.command(inventory)
        return f"({self.who}): {command} ({self.why})" if command else f"({self.who}): {self.why}"

    def instruction(self, inventory: Path | str) -> str:
        """As a refusal says it: "IT runs `ts24-migrate -i sites.yaml load hn-01` (why)"."""
        command = self.command(inventory)
        return f"{self.who} runs `{command}` ({self.why})" if command else f"{self.who}: {self.why}"

    def to_dict(self, inventory: Path | str) -> dict[str, Any]:
        return {"who": self.who, "command": self.command(inventory) or None, "why": self.why}


def shown_inventory(path: Path) -> str:
    """The inventory as the operator can type it from here: relative when under the current folder."""
    if not path.is_absolute():
        return str(path)
    try:
        return os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def next_step(facts: SiteFacts) -> NextStep:
    """What the site needs next, in the order of its life (see README, "A site's states")."""
    site = facts.site_id
    if facts.state in RETIREMENT_STATES:
        return retirement_step(facts)
    if not facts.assessed:
        return NextStep("IT", ("assess", site), "the site has not been assessed")
    backup = facts.backup
    if backup is None:
        why = (
            "an interrupted backup is waiting: the same command resumes it"
            if facts.incomplete_backups
            else "the site has no complete backup"
        )
        return NextStep("IT", ("backup", site), why)
    if backup.verification is Verification.DAMAGED:
        return NextStep(
            "IT",
            ("backup", site),
            f"backup {backup.backup_id} failed its verification: make a new backup (then verify it)",
        )
    if backup.verification is Verification.NONE:
        return NextStep("IT", ("backup", "verify", site), f"backup {backup.backup_id} has not been verified")
    if facts.load is None:
        return NextStep("IT", ("load", site), "the site is not loaded into the new system")
    if backup.verification is not Verification.DECRYPTED:
        return NextStep(
            "custodian",
            ("backup", "verify", site, "--identity", IDENTITY_PLACEHOLDER),
            f"a validation passes only once a custodian has decrypted backup {backup.backup_id}; "
            f"{IDENTITY_PLACEHOLDER} is the custodian's age identity",
        )
    if facts.validation is None or not facts.validation_is_current:
        why = (
            "the site has not been validated"
            if facts.validation is None
            else "the site was loaded again since its latest validation"
        )
        return NextStep("IT", ("validate", site), why)
    if not facts.validation_passed:
        return NextStep(
            "IT", ("validate", site), "the latest validation failed: fix what its report names, then validate again"
        )
    if facts.state is SiteState.DRAINED:
        return NextStep(
            "custodian",
            ("purge", "prepare", site, "--identity", IDENTITY_PLACEHOLDER),
            "the site is drained: with IT, stop its writes, take the final backup and decrypt the whole "
            f"chain ({IDENTITY_PLACEHOLDER} is the custodian's age identity; an auditor may check the "
            "chain first with `reconcile verify-chain`; README: Retiring a TS24 server)",
        )
    return NextStep(
        "IT",
        ("reconcile", "run", site),
        "follow the in-flight dossiers until the site drains; the reconcile-sites deployment runs it daily",
    )


def retirement_step(facts: SiteFacts) -> NextStep:
    """After `purge prepare`: plan (IT), approve (approvers), execute (IT), attest the media and record the
    handover (IT), verify the certificate (auditor). Destroying needs a plan approved by someone else."""
    site, purge = facts.site_id, facts.purge
    if purge.certificate is None and purge.started is not None:
        return NextStep(
            "IT",
            ("purge", "execute", site, "--plan", str(purge.started)),
            "a purge was begun and not finished: the same command resumes it where it stopped",
        )
    if purge.certificate is None and purge.plan is None:
        return NextStep(
            "IT",
            ("purge", "plan", site, "--key", KEY_PLACEHOLDER),
            f"the final backup is verified: check the gates and write the signed plan ({KEY_PLACEHOLDER} "
            "is your own signing key; add --operator NAME unless purge.operator is in the inventory)",
        )
    if purge.certificate is None and not purge.approved:
        assert purge.plan is not None
        return NextStep(
            "approver",
            ("purge", "approve", str(purge.plan), "--key", KEY_PLACEHOLDER),
            f"{len(purge.approvals)} of {purge.approvals_required} approval(s) of plan "
            f"{(purge.plan_sha256 or '')[:16]}: a listed approver other than its author reviews "
            f"plan.html and signs with their own key ({KEY_PLACEHOLDER})",
        )
    if purge.certificate is None:
        assert purge.plan is not None
        approvals = tuple(a for path in purge.approvals for a in ("--approval", str(path)))
        return NextStep(
            "IT",
            ("purge", "execute", site, "--plan", str(purge.plan), *approvals),
            "the plan is approved: every gate is checked again, then the purge, its verification "
            "and the certificate of sanitization",
        )
    if purge.media_attestation is None:
        return NextStep(
            "IT",
            (
                "purge",
                "attest-media",
                site,
                "--device",
                SERIAL_PLACEHOLDER,
                "--method",
                METHOD_PLACEHOLDER,
                "--tool",
                TOOL_PLACEHOLDER,
                "--report",
                REPORT_PLACEHOLDER,
            ),
            "certified: the server's disks still need media sanitization (another tool); record it, "
            "one --device per disk",
        )
    if purge.handover is None:
        return NextStep(
            "IT",
            ("purge", "handover", site, "--receiver", RECEIVER_PLACEHOLDER),
            "the media sanitization is attested: record who received the server",
        )
    return NextStep(
        "auditor",
        (
            "certificate",
            "verify",
            str(purge.certificate),
            "--backups",
            str(facts.backup_root),
            "--ledger",
            str(facts.ledger),
            "--addendum",
            str(purge.media_attestation),
            "--addendum",
            str(purge.handover),
        ),
        "the site is retired: verify its certificate, the backups and ledger it names, and its addenda",
    )


@dataclass(frozen=True)
class Outcome:
    """The one line every stage command, `migrate` and `demo` end with."""

    site_id: str
    verdict: str  # DONE, PASSED, FAILED, REFUSED, STOPPED, ERROR
    state: SiteState
    report: Path | None
    next: NextStep
    inventory: Path

    def line(self) -> str:
        report = str(self.report) if self.report else "none yet"
        return (
            f"outcome: {self.verdict} | site {self.site_id}: {self.state.value} | report: {report} | "
            f"next {self.next.text(self.inventory)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "site_id": self.site_id,
            "state": self.state.value,
            "report": str(self.report) if self.report else None,
            "next": self.next.to_dict(self.inventory),
        }
