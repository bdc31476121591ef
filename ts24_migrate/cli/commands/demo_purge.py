"""`ts24-migrate demo --through purge`: after the demo migration, the site's whole retirement.

The demo folder gets an operator's and an approver's signing key (keys/operator/,
keys/approver/, listed under `approvers:` and `purge:` in its sites.yaml); the
site is reconciled, its world advanced until every dossier is finished, reconciled
again (DRAINED), prepared with the demo custodian's identity, planned by the
operator, approved by the approver, purged, and its certificate verified offline
with the public key only. Demo keys on one disk stand in for people: a real purge
has each key on its own holder's medium.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ts24_migrate.core.errors import VerificationError
from ts24_migrate.runs.app import App

COMMANDS: list = []  # helpers of `demo` only
OPERATOR_KEY = Path("keys/operator/signing.key")
APPROVER_KEY = Path("keys/approver/signing.key")


def add_demo_purge_people(folder: Path, inventory: Path) -> None:
    """An operator and an approver (two people, two keys) in the demo inventory."""
    import yaml

    from ts24_migrate.core.signing import generate_signing_key

    for key in (OPERATOR_KEY, APPROVER_KEY):
        generate_signing_key(folder / key)
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    data["approvers"] = [
        {"name": "Demo Approver", "role": "Head of IT", "public_key": str(APPROVER_KEY.with_suffix(".pub"))}
    ]
    data["purge"] = {
        "approvals_required": 1,
        "operator": {"name": "Demo Operator", "role": "Operator", "organisation": "BHXH demo"},
        "media_destination": "demo: no disks leave this machine",
    }
    inventory.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def retire_demo_site(app: App, folder: Path, site_id: str, identity: Path) -> dict[str, Any]:
    """DRAINED, prepared, planned, approved, purged, certified; the certificate verified offline."""
    from ts24_migrate.core.control_store import SiteState
    from ts24_migrate.core.signing import load_signing_key
    from ts24_migrate.demo.advance import advance_site
    from ts24_migrate.runs.backup import trusted_public_key
    from ts24_migrate.runs.documents import check_certificate
    from ts24_migrate.runs.purge import approve_step, execute_step, plan_step, prepare_step
    from ts24_migrate.runs.reconcile import reconcile_step

    site = app.site(site_id)
    reconcile_step(app, site_id)
    legacy = app.legacy_engine(site, read_only=False)
    advance_site(legacy, app.target_engine(), app.inventory.attachments_path(site), days=4, seed=42, drain=True)
    app.forget_legacy_engines(site)
    drained = reconcile_step(app, site_id)
    if app.control_store.state(site_id) is not SiteState.DRAINED:
        raise VerificationError(
            f"demo site {site_id} did not drain ({drained.in_flight} still in flight): see {drained.reports['html']}"
        )
    prepare_step(app, site_id, identity=identity)
    operator = app.inventory.purge.operator
    assert operator is not None  # add_demo_purge_people set it
    plan = plan_step(app, site_id, author=operator, author_key=load_signing_key(folder / OPERATOR_KEY))
    approval = approve_step(
        app, Path(plan.plan), key=load_signing_key(folder / APPROVER_KEY), valid_for=dt.timedelta(hours=1)
    )
    purged = execute_step(
        app, site_id, plan_path=Path(plan.plan), approvals=[Path(approval.approval)], performed_by=None
    )
    check = check_certificate(
        Path(purged.certificate),
        trusted_public_key(app, None),
        backup_root=app.inventory.backup_path,
        ledger_path=app.ledger_path(site_id),
        plan_path=Path(plan.plan),
    )
    return {
        "plan": plan.plan,
        "plan_sha256": plan.plan_sha256,
        "approval": approval.approval,
        "certificate": purged.certificate,
        "certificate_html": purged.html,
        "certificate_sha256": purged.certificate_sha256,
        "state": app.control_store.state(site_id).value,
        "certificate_verified": check.ok,
        "problems": check.problems,
        "checked": check.checked,
    }
