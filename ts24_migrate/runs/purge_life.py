"""Where a site stands in its retirement (after DRAINED), read from its purge folder.

A purge leaves its traces in WORK_DIR/sites/SITE/purge/PLAN_ID/: the signed
plan, the approvals next to it, the journal of the execution, the certificate
and its addenda (media attestation, handover). `PurgeFacts.read` gathers them
without checking signatures (the commands that act on them check every one);
`steps.site_life.next_step` turns them into the next command, and
`certificate summary` into the fleet's page of certificates.

Example::

    facts = PurgeFacts.read(app, "hn-01")
    facts.plan, facts.approvals, facts.certificate, facts.media_attestation
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from purge.addenda import HANDOVER_NAME, MEDIA_NAME
from purge.approvals import parse_timestamp, utc_now
from purge.journal import PurgeJournal
from ts24_migrate.runs.app import App

PLAN_STAGE = "purge-plan"


def _body(path: Path) -> dict[str, Any]:
    """A signed document's body, or {} when it cannot be read (the acting command says why)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    body = document.get("body") if isinstance(document, dict) else None
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class PurgeFacts:
    plan: Path | None = None  # the latest plan (of the latest successful purge-plan run), if still on disk
    plan_sha256: str | None = None
    approvals: list[Path] = field(default_factory=list)  # unexpired approvals of that plan, one per approver
    approvals_required: int = 1
    started: Path | None = None  # the plan of an execution begun and not certified (the same command resumes it)
    certificate: Path | None = None  # the certificate of the site's certified purge
    certificate_sha256: str | None = None
    media_attestation: Path | None = None
    handover: Path | None = None

    @classmethod
    def read(cls, app: App, site_id: str) -> PurgeFacts:
        folder = app.inventory.site_dir(site_id) / "purge"
        required = app.inventory.purge.approvals_required
        started = certificate = certificate_hash = None
        for journal_path in sorted(folder.glob("*/journal.jsonl")):
            journal = PurgeJournal(journal_path)
            certified = journal.has("certified")
            if certified and (journal_path.parent / "certificate.json").is_file():
                certificate = journal_path.parent / "certificate.json"
                certificate_hash = certified.get("certificate_sha256")
            elif journal.has("started") and (journal_path.parent / "plan.json").is_file():
                started = journal_path.parent / "plan.json"
        media = handover = None
        if certificate is not None:
            media = certificate.parent / MEDIA_NAME if (certificate.parent / MEDIA_NAME).is_file() else None
            handover = certificate.parent / HANDOVER_NAME if (certificate.parent / HANDOVER_NAME).is_file() else None
        plan_run = app.control_store.latest_run(site_id, PLAN_STAGE)
        plan = Path(plan_run.figures["plan"]) if plan_run and plan_run.figures.get("plan") else None
        if plan is not None and not plan.is_file():
            plan = None
        plan_hash = plan_run.figures.get("plan_sha256") if plan is not None and plan_run else None
        return cls(
            plan=plan,
            plan_sha256=plan_hash,
            approvals=_current_approvals(plan, plan_hash),
            approvals_required=required,
            started=started,
            certificate=certificate,
            certificate_sha256=certificate_hash,
            media_attestation=media,
            handover=handover,
        )

    @property
    def approved(self) -> bool:
        return self.plan is not None and len(self.approvals) >= self.approvals_required


def _current_approvals(plan: Path | None, plan_hash: str | None, now: dt.datetime | None = None) -> list[Path]:
    """The plan's approvals not yet expired, the latest of each approver key (execute checks signatures)."""
    if plan is None or not plan_hash:
        return []
    now = now or utc_now()
    author = (_body(plan).get("author") or {}).get("key_id")
    latest: dict[str, Path] = {}
    for path in sorted(plan.parent.glob("approval-*.json")):
        body = _body(path)
        if body.get("plan_sha256") != plan_hash:
            continue
        try:
            if parse_timestamp(str(body.get("expires_at"))) <= now:
                continue
        except ValueError:
            continue
        approver = body.get("approver")
        if not isinstance(approver, dict):
            approver = {}
        key = approver.get("key_id")
        if key and key != author:  # the plan's author never approves it: execute would refuse that one
            latest[key] = path
    return sorted(latest.values())
