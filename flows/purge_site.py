"""The `purge-site` flow: plan a prepared site's purge, wait for its approval, re-check and execute.

The site must be FINAL_BACKUP_VERIFIED (`purge prepare` is done with a
custodian present, not by a schedule). The flow writes the signed plan with
the operator's key, publishes its summary as an artifact (counts, gates and
the plan's hash: no names, no paths of personal files) and pauses. An
approver reviews plan.html, runs `ts24-migrate purge approve PLAN --key
THEIR_KEY --out approval.json`, and resumes the run with that document as
input (`PurgeApproval`: the plan hash and the approval documents). The flow
then runs `execute_step`, which checks every gate, the plan against the site
and each approval's signature again before destroying anything. A pause that
times out destroys nothing: the run fails with the refusal, and the plan
needs a new run.

Example::

    from flows.purge_site import purge_site
    purge_site(site_id="hn-01", operator_key="/media/usb/operator.key", inventory="/etc/ts24/sites.yaml")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run

from ts24_migrate.core.config import Person
from ts24_migrate.core.errors import ConfigError, GateRefused
from ts24_migrate.core.signing import load_signing_key
from ts24_migrate.runs.app import App
from ts24_migrate.runs.documents import write_approval
from ts24_migrate.runs.purge import PurgeCertified, PurgePlanned, execute_step, plan_step

from .artifacts import artifact_key, progress_reporter, publish_markdown
from .inventory import inventory_path


class PurgeApproval(RunInput):
    """What resumes a paused purge: the plan's hash and each approver's signed approval document."""

    plan_sha256: str
    approvals: list[dict[str, Any]]  # as `purge approve --out FILE` writes them (JSON objects)


def plan_markdown(site_id: str, plan: PurgePlanned) -> str:
    totals = plan.totals
    lines = [
        f"# Purge plan of {site_id}: waiting for {plan.approvals_required} approval(s)",
        f"plan SHA-256 `{plan.plan_sha256}`",
        "",
        f"- tables: **{totals['tables']}** ({totals['rows']} rows), other objects: {totals['objects']}, "
        f"database files: {totals['database_files']}",
        f"- attachment files: **{totals['files']}** ({totals['file_bytes']:,} bytes), links: {totals['links']}, "
        f"folders: {totals['directories']}",
        "",
        "## Gates",
    ]
    lines += [f"- {'✅' if g['holds'] else '❌'} {g['name']}" for g in plan.gates]
    lines += [
        "",
        "Review plan.html next to the plan, then `ts24-migrate purge approve PLAN --key YOUR_KEY "
        "--out approval.json` and resume this run with the plan hash and that document.",
    ]
    return "\n".join(lines)


def certificate_markdown(site_id: str, result: PurgeCertified) -> str:
    figures = result.figures
    return "\n".join(
        [
            f"# Certificate of sanitization of {site_id}: **{result.state}**",
            f"certificate SHA-256 `{result.certificate_sha256}`, plan `{result.plan_sha256}`",
            "",
            f"- destroyed: {figures['tables_dropped']} tables, {figures['objects_dropped']} other objects, "
            f"{figures['files_overwritten']} files ({figures['bytes_overwritten']:,} bytes)",
            f"- verification: {result.verification['database']}; {result.verification['attachments']}",
            f"- residue scan: {result.residue_scan}",
            "- next: media sanitization of the disks (`purge attest-media`), then `purge handover`",
        ]
    )


@flow(name="purge-site")
def purge_site(
    site_id: str,
    operator_key: str,
    inventory: str | None = None,
    operator: str | None = None,
    approval_timeout_seconds: int = 7 * 24 * 3600,
    poll_interval_seconds: int = 10,
) -> PurgeCertified:
    logger = get_run_logger()
    path = inventory_path(inventory)
    app = App(Path(path))
    try:
        author = Person(name=operator) if operator else app.inventory.purge.operator
        if author is None:
            raise ConfigError("say who makes the plan: the operator parameter (or purge.operator in sites.yaml)")
        plan = plan_step(app, site_id, author=author, author_key=load_signing_key(Path(operator_key)))
    finally:
        app.close()
    plan_hash = plan.plan_sha256
    publish_markdown(site_id, "purge-plan", plan_markdown(site_id, plan), "purge plan waiting for approval")
    logger.info(
        "site %s: plan %s written; waiting up to %d s for its approval", site_id, plan_hash, approval_timeout_seconds
    )
    try:
        answer = pause_flow_run(
            wait_for_input=PurgeApproval,
            timeout=approval_timeout_seconds,
            poll_interval=poll_interval_seconds,
            key=artifact_key("approval", plan_hash[:16]),
        )
    except FlowPauseTimeout:
        raise GateRefused(
            f"site {site_id}: plan {plan_hash} was not approved within {approval_timeout_seconds} s: "
            f"nothing was destroyed; run the flow again for a new plan"
        ) from None
    if answer.plan_sha256 != plan_hash:
        raise GateRefused(
            f"site {site_id}: the approval input names plan {answer.plan_sha256}, this run's plan is "
            f"{plan_hash}: nothing was destroyed"
        )
    folder = Path(plan.plan).parent
    approvals = []
    for number, document in enumerate(answer.approvals, start=1):
        if not isinstance(document.get("body"), dict):
            raise GateRefused(
                f"site {site_id}: approval input {number} is not an approval document (no body): nothing was destroyed"
            )
        # Kept next to the plan like `purge approve`'s; execute_step checks each signature and expiry.
        approval = folder / f"approval-flow-{str(flow_run.id)[:8]}-{number}.json"
        write_approval(approval, document)
        approvals.append(approval)
    app = App(Path(path))
    try:
        result = execute_step(
            app,
            site_id,
            plan_path=Path(plan.plan),
            approvals=approvals,
            performed_by=None,
            progress=progress_reporter(site_id, "purge"),
        )
    finally:
        app.close()
    publish_markdown(site_id, "purge-certificate", certificate_markdown(site_id, result), "certificate of sanitization")
    return result
