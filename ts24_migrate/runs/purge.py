"""Purge steps: prepare (write stop, final increment, custodian verification), plan, approve, execute.

Each runs the purge package inside a stage run (control store + ledger) and
returns a JSON-able summary. The order of a site's retirement:

1. `prepare_step` (a custodian present, with their identity): stops writes to
   the legacy database, takes the final backup increment (a reconcile run),
   decrypts and verifies the whole chain, restore-drills it into a private
   scratch database, checks the live data equals it, records a signed
   `purge.chain_verified` event; state FINAL_BACKUP_VERIFIED.
2. `plan_step` (the operator, with their own key): every gate, then the
   signed plan of exactly what will be destroyed (dry run: nothing changes).
3. `approve_step` (an approver, with their own key): a signed approval of the
   plan's hash, with an expiry.
4. `execute_step` (the operator): every gate again, the plan still equal to
   the site, the approvals; then the journaled destruction, verification,
   residue scan and the certificate; states PURGE_APPROVED, PURGED, CERTIFIED.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from backups.chain import chain_fingerprints, restore_chain
from backups.verify import verify_backup
from extract.discovery import discover_tables
from purge.approvals import ListedApprover, approval_document, check_approvals, timestamp, utc_now
from purge.certificate import CERTIFICATE_EVENT, certificate_body
from purge.documents import read_document, write_document
from purge.execute import destroy, shred_folder, steps_of
from purge.gates import GateResult, PurgeRefused, require
from purge.journal import PurgeJournal
from purge.plan import LiveScope, plan_body, scope_differences
from purge.remaining_copies import remaining_copies, scratch_record
from purge.render import write_html
from purge.residue import residue_salt, salt_id, sample_values, scan_paths
from purge.statements import DropDatabase, SetSingleUser, UseDatabase
from purge.verify import SCHEMATA, database_absent, folder_empty, outside_reach, scan_locations, server_residue_facts
from purge.write_stop import check_writes_stopped, stop_writes
from ts24_migrate.core.config import Person
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.errors import ConfigError, GateRefused, UsageError, VerificationError
from ts24_migrate.core.keys import recipient_of
from ts24_migrate.core.private_files import make_private_dirs
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.server_identity import ServerIdentity, probe_server_identity
from ts24_migrate.core.signing import SigningKey, checked_document, key_id_of, load_public_key, signed_document
from ts24_migrate.core.stage_runs import stage_run
from ts24_migrate.runs.app import App

from .. import TOOL_NAME, __version__
from .backup import record_scratch, trusted_public_key
from .latest import refresh_latest, updates_latest
from .purge_facts import (
    CHAIN_VERIFIED,
    PRE_PURGE_STATES,
    SERVER_FIELDS,
    WRITES_STOPPED,
    chain_facts,
    gather,
    legacy_target,
    objects_reference,
    purge_gates,
    scope_gate,
    server_gate,
    survey,
)
from .reconcile import reconcile_step

# -- typed results (core.results): fields named and ordered as the CLI's --json output shows them ------


class LedgerEventReference(StageResult):
    seq: int
    hash: str


class RestoreDrill(StageResult):
    """The restore drill of the chain: it matched (a mismatch raises), where, and the fingerprints held."""

    ok: bool
    into: str
    tables: dict[str, str]  # table -> fingerprint
    attachments: str | None  # the attachment folder's fingerprint


class PurgePrepared(StageResult):
    """What prepare_step returns."""

    run_id: str
    site_id: str
    state: str  # FINAL_BACKUP_VERIFIED
    write_stop: dict[str, Any]  # purge.write_stop.stop_writes: method, detail...
    final_increment: str | None  # None: nothing changed since the last increment
    chain: list[dict[str, Any]]  # the chain's backups, oldest first (backup_id...)
    parts_decrypted: int
    rows_recounted: int
    files_recounted: int
    restore_drill: RestoreDrill
    verification_event: LedgerEventReference


class PurgePlanned(StageResult):
    """What plan_step returns."""

    run_id: str
    site_id: str
    plan_sha256: str
    plan: str  # plan.json's path
    html: str  # plan.html's path
    totals: dict[str, Any]
    gates: list[dict[str, Any]]  # purge.gates.GateResult.to_dict(), every one held
    approvals_required: int


class PurgeApproved(StageResult):
    """What approve_step returns."""

    site_id: str
    plan_sha256: str
    approval: str  # the approval document's path
    approval_sha256: str
    approver: str
    key_id: str
    expires_at: str
    totals: dict[str, Any]


class PurgeCertified(StageResult):
    """What execute_step returns: the certificate of sanitization and what it says."""

    site_id: str
    state: str
    plan_sha256: str
    certificate: str  # certificate.json's path
    html: str  # certificate.html's path
    certificate_sha256: str
    figures: dict[str, Any]
    verification: dict[str, Any]  # passed, database, attachments
    residue_scan: Any  # the residue scan's summary
    residues: Any  # residues left for media sanitization
    resumed: bool


class MediaAttested(StageResult):
    """What attest_media_step returns."""

    site_id: str
    media_attestation: str  # its path
    sha256: str
    certificate_sha256: str
    devices: list[Any]


class HandedOver(StageResult):
    """What handover_step returns."""

    site_id: str
    handover: str  # its path
    sha256: str
    receiver: str
    date: str  # YYYY-MM-DD


Progress = Callable[[str, int, int], None]
TOOL = {"name": TOOL_NAME, "version": __version__}


def purge_dir(app: App, site_id: str) -> Path:
    return app.inventory.site_dir(site_id) / "purge"


def _advance(app: App, site_id: str, state: SiteState, run_id: str) -> None:
    """Move the site to `state` inside the purge run (never back)."""
    app.control_store.advance_state(site_id, state, run_id)


def _refuse_unless(gate: GateResult, site_id: str, doing: str) -> None:
    require([gate], site_id=site_id, doing=doing)


def _copies(app: App, site_id: str) -> list[dict[str, Any]]:
    """The register of copies outside the server, for a signed document: named from the inventory's folder
    (no host path), read without changing anything (the plan is a dry run)."""
    return [{k: v for k, v in c.to_dict().items() if k != "path"} for c in remaining_copies(app, site_id, dry_run=True)]


# -- 1. prepare -------------------------------------------------------------------------------------


@updates_latest
def prepare_step(
    app: App,
    site_id: str,
    *,
    identity: Path,
    scratch_url: Secret | None = None,
    parent_run_id: str | None = None,
    scratch_url_env: str | None = None,
) -> PurgePrepared:
    """Stop writes, take the final increment, have the custodian decrypt-verify and restore-drill the chain."""
    app.site(site_id)
    store, ledger = app.control_store, app.ledger(site_id)
    public_key = trusted_public_key(app, None)
    state = store.state(site_id)
    if state not in PRE_PURGE_STATES:
        raise PurgeRefused(
            f"site {site_id}: refusing to prepare the purge: gate drained failed: the site is "
            f"{state.value}, not DRAINED. What to do: run `ts24-migrate reconcile run {site_id}` "
            f"until it drains; nothing was changed",
            [],
        )
    with stage_run(
        store,
        ledger,
        site_id,
        "purge-prepare",
        success_state=SiteState.FINAL_BACKUP_VERIFIED,
        parent_run_id=parent_run_id,
    ) as run:
        gate, reached = server_gate(app, site_id, run)
        _refuse_unless(gate, site_id, "prepare the purge")
        target = legacy_target(app, site_id, reached)
        _refuse_unless(scope_gate(app, target), site_id, "prepare the purge")

        done = _stop_writes(app, target)
        check = (
            check_writes_stopped(
                None, kind="sqlite", database=target.database, files=target.database_files(), accounts=[]
            )
            if target.kind == "sqlite"
            else None
        )
        if check is None:
            with app.legacy_engine(target.site).connect() as conn:
                check = check_writes_stopped(
                    conn,
                    kind=target.kind,
                    database=target.database,
                    files=[],
                    accounts=list(target.site.purge.application_accounts),
                    stopped_at_connection=done.get("connection_id"),
                )
        _refuse_unless(
            GateResult.check(
                "writes_stopped",
                check.holds,
                f"{check.method}: {check.detail}",
                remedy="see the detail; name the TS24 application accounts under the site's purge.application_accounts",
            ),
            site_id,
            "prepare the purge",
        )
        stopped = ledger.append(site_id, "purge", WRITES_STOPPED, {**done, "detail": check.detail}, run_id=run.run_id)

        final = reconcile_step(app, site_id, sweep=True, parent_run_id=run.run_id)
        if not final.drained:
            raise PurgeRefused(
                f"site {site_id}: refusing to prepare the purge: gate drained failed: the final "
                f"reconciliation (run {final.run_id}) found it not drained ({', '.join(final.failed_criteria())}). "
                f"What to do: reconcile until it drains; writes stay stopped",
                [],
            )

        chain = chain_facts(app, site_id, public_key)
        if chain.problem or chain.report is None or not chain.report.ok:
            why = chain.problem or (chain.report.problems[0] if chain.report is not None else "it was not read")
            raise VerificationError(f"site {site_id}: the backup chain does not verify: {why}")
        decrypted = {"parts": 0, "rows": 0, "files": 0}
        for manifest in chain.manifests:
            report = verify_backup(manifest.path, public_key_b64=public_key, identity=identity)
            if not report.ok or not report.decrypted:
                raise VerificationError(
                    f"site {site_id}: backup {manifest.backup_id} does not verify with the "
                    f"custodian's identity: {(report.problems or ['not decrypted'])[0]}"
                )
            decrypted["parts"] += report.parts_checked
            decrypted["rows"] += report.rows_checked
            decrypted["files"] += report.files_checked
        if scratch_url is not None:  # restored tables stay there: recorded, to be destroyed with the site
            record_scratch(
                store,
                run,
                scratch_record(
                    scratch_url, None, url_env=scratch_url_env, tables=[t for m in chain.manifests for t in m.tables]
                ),
            )
        drill = _restore_drill(app, site_id, run.run_id, chain.manifests, identity, public_key, scratch_url, target)

        live = survey(app, target)
        expected = chain_fingerprints(chain.manifests)
        if live.table_fingerprints() != expected:
            raise VerificationError(
                f"site {site_id}: the live data differs from the chain just verified: writes got through the write stop"
            )
        event = ledger.append(
            site_id,
            "purge",
            CHAIN_VERIFIED,
            {
                "chain_head": chain.head(),
                "backups": chain.entries(),
                "custodian_recipient": recipient_of(identity),
                "decrypted": True,
                "parts_decrypted": decrypted["parts"],
                "rows_recounted": decrypted["rows"],
                "files_recounted": decrypted["files"],
                "restore_drill": drill,
                "fingerprints": expected,
                "objects": live.object_fingerprints(),
                "final_reconcile_run": final.run_id,
                "final_increment": final.increment,
                "writes_stopped_event": {"seq": stopped.seq, "hash": stopped.hash},
            },
            run_id=run.run_id,
        )
        run.figures.update(
            {
                "write_stop": done["method"],
                "final_reconcile_run": final.run_id,
                "final_increment": final.increment,
                "chain_head": chain.head(),
                "parts_decrypted": decrypted["parts"],
                "restore_drill_ok": drill["ok"],
                "verification_event": {"seq": event.seq, "hash": event.hash},
            }
        )
    return PurgePrepared(
        run_id=run.run_id,
        site_id=site_id,
        state=SiteState.FINAL_BACKUP_VERIFIED.value,
        write_stop=done,
        final_increment=final.increment,
        chain=chain.entries(),
        parts_decrypted=decrypted["parts"],
        rows_recounted=decrypted["rows"],
        files_recounted=decrypted["files"],
        restore_drill=RestoreDrill(**drill),
        verification_event=LedgerEventReference(seq=event.seq, hash=event.hash),
    )


def _stop_writes(app: App, target) -> dict[str, Any]:
    if target.kind == "sqlite":
        return stop_writes(None, kind="sqlite", database=target.database, files=target.database_files(), accounts=[])
    # The one place besides the drop that writes to the legacy server: its grant tables (or the database's
    # read-only flag), through the server itself, never a server-wide setting.
    engine = target.server_engine(read_only=False)
    try:
        with engine.connect() as conn:
            done = stop_writes(
                conn,
                kind=target.kind,
                database=target.database,
                files=[],
                accounts=list(target.site.purge.application_accounts),
            )
            conn.commit()
        return done
    finally:
        engine.dispose()


_DRILL_PREFIX = ".restore-drill-"  # + the run id of the prepare whose private scratch it is


def _shred_abandoned_drills(app: App, site_id: str, folder: Path) -> None:
    """Shred the drill folders of prepares that are no longer running. A prepare killed during its drill
    never reaches its own shredding: its folder, decrypted legacy data, would otherwise outlive the
    purge and its certificate. (Folders named before the run id was in the name count as abandoned;
    stage_run has already marked the killed runs abandoned when this runs.)"""
    running = {r.run_id for r in app.control_store.runs(site_id, "purge-prepare") if r.outcome == "running"}
    for leftover in sorted(folder.glob(f"{_DRILL_PREFIX}*")):
        if leftover.is_dir() and not leftover.is_symlink() and leftover.name[len(_DRILL_PREFIX) :] not in running:
            shred_folder(leftover)


def _restore_drill(
    app: App,
    site_id: str,
    run_id: str,
    manifests,
    identity: Path,
    public_key: str,
    scratch_url: Secret | None,
    target,
) -> dict[str, Any]:
    """Restore the chain into a scratch database (private SQLite unless given) and compare with chain and live."""
    folder = make_private_dirs(purge_dir(app, site_id))
    _shred_abandoned_drills(app, site_id, folder)
    scratch_dir = folder / f"{_DRILL_PREFIX}{run_id}"
    scratch_dir.mkdir(mode=0o700)  # a new run id: never an existing folder
    into = store_engine(scratch_url or Secret(f"sqlite:///{scratch_dir / 'drill.sqlite'}"))
    try:
        files = target.attachments if target.attachments is not None and target.attachments.is_dir() else None
        report = restore_chain(
            manifests,
            identity,
            into,
            scratch_dir / "files",
            public_key_b64=public_key,
            live=app.legacy_engine(target.site),
            live_attachments=files,
        )
    finally:
        into.dispose()
        shred_folder(scratch_dir)  # decrypted legacy data: overwritten, not just deleted
    if not report.ok:
        raise VerificationError(
            f"site {site_id}: the restore drill of the backup chain does not match: {report.problems[0]}"
        )
    return {
        "ok": True,
        "into": "scratch database" if scratch_url else "private scratch SQLite (shredded after)",
        "tables": {n: t["fingerprint"] for n, t in report.tables.items()},
        "attachments": (report.files or {}).get("fingerprint"),
    }


# -- 2. plan ----------------------------------------------------------------------------------------


def _approvers(app: App) -> list[ListedApprover]:
    listed = []
    for approver in app.inventory.approvers:
        reference = approver.public_key
        candidate = app.inventory.resolve_path(Path(reference))
        listed.append(
            ListedApprover(
                approver.name, approver.role, load_public_key(candidate if candidate.is_file() else reference)
            )
        )
    return listed


@updates_latest
def plan_step(
    app: App, site_id: str, *, author: Person, author_key: SigningKey, parent_run_id: str | None = None
) -> PurgePlanned:
    """Check every gate and write the signed plan (JSON + HTML). Changes nothing on the site."""
    site = app.site(site_id)
    store, ledger = app.control_store, app.ledger(site_id)
    public_key = trusted_public_key(app, None)
    approvers = _approvers(app)
    if author_key.key_id == key_id_of(public_key):
        raise UsageError(
            "--key is the pipeline's signing key: sign the plan with your own key (a plan's author "
            "is a person, whom approvals are checked against)"
        )
    with stage_run(store, ledger, site_id, "purge-plan", parent_run_id=parent_run_id) as run:
        facts = gather(app, site_id, run, public_key)
        results = purge_gates(facts)
        require(results, site_id=site_id, doing="plan the purge")
        live = facts.live
        assert live is not None and facts.server is not None and facts.verification is not None
        folder = purge_dir(app, site_id)
        salt = residue_salt(folder)
        with app.legacy_engine(site).connect() as conn:
            sample = sample_values(conn, discover_tables(conn), salt)
            server_facts = server_residue_facts(conn, kind=facts.target.kind, database=facts.target.database)
        _objects, objects_source = objects_reference(facts)
        event = facts.verification
        validation = facts.validation
        ledger_head = ledger.head()
        # The plan lists the copies of this site's data the purge does NOT reach (the register of
        # purge.remaining_copies), so the approver and the auditor see them.
        body = plan_body(
            site={"id": site.id, "office": site.office, "name": site.name},
            created_at=timestamp(utc_now()),
            author={
                "name": author.name,
                "role": author.role,
                "organisation": author.organisation,
                "key_id": author_key.key_id,
                "public_key": author_key.public_key_b64,
            },
            tool=TOOL,
            server=facts.server.to_dict(),
            live=live,
            chain=facts.chain.entries(),
            chain_fingerprints=chain_fingerprints(facts.chain.manifests),
            objects_compared_with=objects_source,
            custodian_verification={
                "event_seq": event.seq,
                "event_hash": event.hash,
                "chain_head": event.data.get("chain_head"),
                "custodian_recipient": event.data.get("custodian_recipient"),
                "summary": f"custodian {str(event.data.get('custodian_recipient'))[:20]}... decrypted "
                f"{event.data.get('parts_decrypted')} parts on {event.time}; the restore drill matched",
            },
            write_stop={"method": facts.write_stop.method, "detail": facts.write_stop.detail},
            ledger_head={"seq": ledger_head.seq, "hash": ledger_head.hash} if ledger_head else {},
            validation={"run_id": validation.run_id, "verdict": validation.figures.get("verdict")}
            if validation
            else {},
            gates=results,
            approvals_required=app.inventory.purge.approvals_required,
            approvers=[{"name": a.name, "role": a.role, "key_id": a.key_id} for a in approvers],
            residue={**sample, "server_facts": server_facts},
            residues_outside_reach=outside_reach(facts.target.kind, server_facts),
            remaining_copies=_copies(app, site_id),
        )
        document = signed_document(body, [("pipeline", app.signing_key), ("author", author_key)])
        plan_hash = checked_document(document, {"pipeline": public_key}, what="plan")[1]
        plan_folder = folder / plan_hash[:16]
        plan_path = plan_folder / "plan.json"
        write_document(plan_path, document)
        html = write_html(
            plan_folder / "plan.html",
            "plan.html.j2",
            title=f"Purge plan of site {site_id}",
            document=document,
            plan_hash=plan_hash,
        )
        ledger.append(
            site_id,
            "purge",
            "purge.planned",
            {"plan_sha256": plan_hash, "totals": body["totals"], "author_key_id": author_key.key_id},
            run_id=run.run_id,
        )
        run.figures.update({"plan_sha256": plan_hash, "plan": str(plan_path), **body["totals"]})
    return PurgePlanned(
        run_id=run.run_id,
        site_id=site_id,
        plan_sha256=plan_hash,
        plan=str(plan_path),
        html=str(html),
        totals=body["totals"],
        gates=[g.to_dict() for g in results],
        approvals_required=body["approvals"]["required"],
    )


def load_plan(app: App, plan_path: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(document, body, hash) of a plan whose pipeline and author signatures verify."""
    document = read_document(plan_path, what="plan")
    author = (document.get("body") or {}).get("author") or {}
    body, plan_hash = checked_document(
        document,
        {"pipeline": trusted_public_key(app, None), "author": author.get("public_key")},
        what=f"plan {plan_path}",
    )
    if body.get("format") != "ts24-purge-plan/1":
        raise GateRefused(f"plan {plan_path}: not a purge plan ({body.get('format')!r})")
    return document, body, plan_hash


# -- 3. approve -------------------------------------------------------------------------------------


def approve_step(
    app: App, plan_path: Path, *, key: SigningKey, valid_for: dt.timedelta, out: Path | None = None
) -> PurgeApproved:
    """Sign the plan's hash with an approver's key; refused for an unlisted approver or the plan's author."""
    _document, body, plan_hash = load_plan(app, plan_path)
    listed = {a.key_id: a for a in _approvers(app)}
    approver = listed.get(key.key_id)
    if approver is None or approver.public_key != key.public_key_b64:
        raise GateRefused(
            f"key {key.key_id} is not listed under approvers in {app.inventory.source_path}: only a "
            f"listed approver may approve a purge"
        )
    if key.key_id == body["author"]["key_id"]:
        raise GateRefused(
            f"key {key.key_id} made this plan: its author cannot approve it (a purge needs a second person)"
        )
    document = approval_document(body, plan_hash, key=key, name=approver.name, role=approver.role, valid_for=valid_for)
    path = (
        out
        or Path(plan_path).parent
        / f"approval-{key.key_id}-{document['body']['approved_at'][:19].replace(':', '')}.json"
    )
    approval_hash = write_document(path, document)
    refresh_latest(app, body["site"]["id"])  # its next step is now the next approver's, or the execution
    return PurgeApproved(
        site_id=body["site"]["id"],
        plan_sha256=plan_hash,
        approval=str(path),
        approval_sha256=approval_hash,
        approver=approver.name,
        key_id=key.key_id,
        expires_at=document["body"]["expires_at"],
        totals=body["totals"],
    )


# -- 4. execute -------------------------------------------------------------------------------------


@updates_latest
def execute_step(
    app: App,
    site_id: str,
    *,
    plan_path: Path,
    approvals: list[Path],
    performed_by: Person | None,
    media_destination: str | None = None,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
) -> PurgeCertified:
    """Execute an approved plan (or resume one a kill interrupted), verify, scan, certify."""
    site = app.site(site_id)
    _document, body, plan_hash = load_plan(app, plan_path)
    if body["site"]["id"] != site_id:
        raise GateRefused(f"plan {plan_path} is a plan of site {body['site']['id']}, not {site_id}")
    folder = purge_dir(app, site_id) / plan_hash[:16]
    journal = PurgeJournal(folder / "journal.jsonl")
    if journal.has("certified"):
        return _certified_summary(app, site_id, folder, plan_hash, journal, resumed=True)
    performed = performed_by or app.inventory.purge.operator
    if performed is None:
        raise UsageError("say who performs the purge: --operator NAME (or purge.operator in sites.yaml)")
    destination = (
        media_destination
        or app.inventory.purge.media_destination
        or "to be decided: record it with the media sanitization"
    )
    store, ledger = app.control_store, app.ledger(site_id)
    public_key = trusted_public_key(app, None)
    planned = LiveScope.from_plan(body)
    with stage_run(
        store, ledger, site_id, "purge", success_state=SiteState.CERTIFIED, parent_run_id=parent_run_id
    ) as run:
        started = journal.has("started")
        if started is None:
            valid = _gates_before_destruction(app, site_id, run, body, plan_hash, planned, approvals, public_key)
            _advance(app, site_id, SiteState.PURGE_APPROVED, run.run_id)
            ledger.append(
                site_id,
                "purge",
                "purge.started",
                {
                    "plan_sha256": plan_hash,
                    "approvals": [a["approval_sha256"] for a in valid],
                    "approvers": [a["approver"] for a in valid],
                },
                run_id=run.run_id,
            )
            journal.record(
                "started",
                at=timestamp(utc_now()),
                run_id=run.run_id,
                plan_sha256=plan_hash,
                approvals=valid,
                performed_by=performed.model_dump(),
                media_destination=destination,
            )
            started = journal.recorded("started")
        else:
            _check_remaining_scope(app, site_id, run, body, planned, journal)
            run.figures["resumed"] = True
        target = legacy_target(app, site_id, ServerIdentity.from_dict(body["server"]))
        app.forget_legacy_engines(site)  # a SQLite file is about to be overwritten: nothing of ours holds it
        figures = destroy(planned, journal, drop_database=_dropper(target, body), progress=progress)
        ledger.append(
            site_id, "purge", "purge.destroyed", {"plan_sha256": plan_hash, **figures.to_dict()}, run_id=run.run_id
        )
        verification = _verify_after(app, target, planned, body)
        if not verification["passed"]:
            raise VerificationError(
                f"site {site_id}: the purge is not complete: {verification['database']}; "
                f"{verification['attachments']}. Run the same command again to finish it"
            )
        _advance(app, site_id, SiteState.PURGED, run.run_id)
        ledger.append(
            site_id,
            "purge",
            "purge.verified",
            {
                "plan_sha256": plan_hash,
                "database": verification["database"],
                "attachments": verification["attachments"],
                "residue_values_found": verification["residue_scan"]["values_found"],
            },
            run_id=run.run_id,
        )
        certificate_path, certificate_hash = _certify(
            app, site_id, folder, body, plan_hash, started, figures.to_dict(), verification, public_key
        )
        journal.record("certified", certificate_sha256=certificate_hash)
        run.figures.update({"plan_sha256": plan_hash, "certificate_sha256": certificate_hash, **figures.to_dict()})
    return _certified_summary(app, site_id, folder, plan_hash, journal, resumed=bool(run.figures.get("resumed")))


def _gates_before_destruction(
    app: App,
    site_id: str,
    run,
    body: dict[str, Any],
    plan_hash: str,
    planned: LiveScope,
    approvals: list[Path],
    public_key: str,
) -> list[dict[str, Any]]:
    """Every gate, the plan still equal to the site, and the approvals; refuses (exit 4) or returns them."""
    facts = gather(app, site_id, run, public_key)
    results = purge_gates(facts)
    lines = []
    if facts.server is not None and facts.server != ServerIdentity.from_dict(body["server"]):
        lines.append(f"the server reached ({facts.server.describe()}) is not the plan's")
    if facts.live is not None:
        lines += scope_differences(planned, facts.live)
    if facts.chain.head() != body["backup_chain"]["head"]:
        lines.append("the backup chain's head is not the plan's")
    if facts.live is None:
        lines.append("the site could not be compared with the plan (see the other gates)")
    results.append(
        GateResult.check(
            "plan_current",
            not lines,
            "; ".join(lines) if lines else f"plan {plan_hash[:16]}... lists exactly what is there now",
            remedy=f"make a new plan (`ts24-migrate purge plan {site_id}`) and have it approved again",
        )
    )
    documents = []
    for path in approvals:
        try:
            documents.append((str(path), read_document(path, what="approval")))
        except GateRefused as exc:
            documents.append((str(path), {"body": {}, "signatures": [], "_problem": str(exc)}))
    check = check_approvals(
        [(n, d) for n, d in documents if "_problem" not in d],
        plan_hash=plan_hash,
        plan_body=body,
        approvers=_approvers(app),
        pipeline_key=public_key,
    )
    problems = [d["_problem"] for _n, d in documents if "_problem" in d] + check.problems
    required = app.inventory.purge.approvals_required
    enough = len(check.valid) >= required
    results.append(
        GateResult.check(
            "approvals",
            enough,
            f"{len(check.valid)} valid approval(s) of {required} required"
            + (f"; refused: {'; '.join(problems)}" if problems else ""),
            remedy=f"have {required} listed approver(s) other than the plan's author approve this plan "
            f"(`ts24-migrate purge approve PLAN --key THEIR_KEY`) and pass each file with --approval",
        )
    )
    require(results, site_id=site_id, doing="execute the purge")
    return check.valid


def _check_remaining_scope(
    app: App, site_id: str, run, body: dict[str, Any], planned: LiveScope, journal: PurgeJournal
) -> None:
    """A resumed purge: what is not destroyed yet must still be what the plan lists (no new approval needed)."""
    problems = []
    untouched_db = all(
        journal.state(s) is None for s in steps_of(planned) if s.startswith(("database:", "database-file:"))
    )
    if untouched_db:
        gate, reached = server_gate(app, site_id, run)
        if not gate.holds:
            problems.append(gate.detail)
        else:
            now = survey(app, legacy_target(app, site_id, reached))
            # The database only here; the attachment entries are checked one by one below.
            problems += scope_differences(
                LiveScope(planned.engine, planned.database, planned.tables, planned.objects, planned.database_files),
                LiveScope(now.engine, now.database, now.tables, now.objects, now.database_files),
            )
    elif planned.engine == "sqlite":
        for entry in planned.database_files:
            if journal.state(f"database-file:{entry.path}") is None:
                problems += _entry_problems(entry, Path(entry.path))
    if planned.attachments_root is not None:
        for entry in planned.attachments:
            if journal.state(f"attachment:{entry.path}") is None and entry.kind != "directory":
                problems += _entry_problems(entry, Path(planned.attachments_root) / entry.path)
    if problems:
        raise PurgeRefused(
            f"site {site_id}: refusing to resume the purge: gate plan_current failed: what is left "
            f"is no longer what the plan lists: {'; '.join(problems[:5])}. What to do: find out who "
            f"changed the site during its purge; the journal {journal.path} shows what was done",
            [],
        )


def _entry_problems(entry, path: Path) -> list[str]:
    from purge.scope import hash_regular_file, open_directory

    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return [f"{path} is gone"]
    if entry.kind == "link":
        return [] if os.path.islink(path) and os.readlink(path) == entry.link_target else [f"{path} changed"]
    if entry.kind == "file":
        if (info.st_dev, info.st_ino) != (entry.device, entry.inode):
            return [f"{path} is another file"]
        parent = open_directory(path.parent)
        try:
            size, sha = hash_regular_file(parent, path.name, info)
        finally:
            os.close(parent)
        return [] if (size, sha) == (entry.size, entry.sha256) else [f"{path} changed"]
    return []


def _dropper(target, body: dict[str, Any]) -> Callable[[], bool] | None:
    if target.kind == "sqlite":
        return None
    expected = ServerIdentity.from_dict(body["server"])

    def drop() -> bool:
        # The legacy engine opened writable: here, and for the write stop, only.
        engine = target.server_engine(read_only=False)
        try:
            with engine.connect() as conn:
                reached = probe_server_identity(conn)
                different = [f for f in SERVER_FIELDS if getattr(reached, f) != getattr(expected, f)]
                if different:
                    raise GateRefused(
                        f"refusing to drop {target.database}: the server reached is not the plan's "
                        f"(differs in {', '.join(different)}); nothing was dropped"
                    )
                exists = _database_exists(conn, target)
                if exists:
                    if target.kind == "mssql":
                        conn.execute(UseDatabase("master"))
                        conn.execute(SetSingleUser(target.database))
                    conn.execute(DropDatabase(target.database))
                conn.commit()
            return exists
        finally:
            engine.dispose()

    return drop


def _database_exists(conn, target) -> bool:
    if target.kind == "mssql":
        from purge.verify import SYS_DATABASES

        return (
            conn.execute(sa.select(SYS_DATABASES.c.name).where(SYS_DATABASES.c.name == target.database)).first()
            is not None
        )
    return (
        conn.execute(sa.select(SCHEMATA.c.SCHEMA_NAME).where(SCHEMATA.c.SCHEMA_NAME == target.database)).first()
        is not None
    )


def _verify_after(app: App, target, planned: LiveScope, body: dict[str, Any]) -> dict[str, Any]:
    if planned.engine == "sqlite":
        database_ok, database_detail = database_absent(planned, None)
    else:
        engine = target.server_engine(read_only=True)
        try:
            with engine.connect() as conn:
                database_ok, database_detail = database_absent(planned, conn)
        finally:
            engine.dispose()
    folder_ok, folder_detail = folder_empty(planned)
    sample = body["residue"]["sample"]
    salt = residue_salt(purge_dir(app, body["site"]["id"]))
    if salt_id(salt) != sample["salt_id"]:
        raise ConfigError(
            f"the residue salt in {purge_dir(app, body['site']['id'])} is not the plan's: it was "
            f"replaced; the residue scan cannot run"
        )
    scan = scan_paths(scan_locations(planned, sample.get("server_facts") or {}), sample, salt).to_dict()
    found = scan["values_found"]
    scan["summary"] = (
        f"{len(sample['items'])} sampled values searched in {scan['files_scanned']} files "
        f"({scan['bytes_scanned']:,} bytes) at {len(scan['locations'])} locations; "
        + (
            f"{found} found in {len(scan['hits'])} files (listed as residues for the media step)"
            if found
            else "none found"
        )
    )
    passed = database_ok and folder_ok
    return {
        "passed": passed,
        "result": "passed: nothing of the site is left where the tool can look" if passed else "FAILED",
        "database": database_detail,
        "attachments": folder_detail,
        "method": "full: the database's existence (files or server catalog) and every entry of the attachment "
        "folder checked; a residue scan for a sample of distinctive values (keyed hashes) where "
        "this host can read",
        "residue_scan": scan,
    }


def _certify(
    app: App,
    site_id: str,
    folder: Path,
    body: dict[str, Any],
    plan_hash: str,
    started: dict[str, Any],
    figures: dict[str, Any],
    verification: dict[str, Any],
    public_key: str,
) -> tuple[Path, str]:
    path = folder / "certificate.json"
    ledger = app.ledger(site_id)
    if path.exists():  # written before a kill: reuse it (its signature is checked like any certificate's)
        document = read_document(path, what="certificate")
        _body, digest = checked_document(document, {"pipeline": public_key}, what="certificate")
    else:
        head = ledger.head()
        residues = list(body["residue"]["outside_reach"]) + [
            f"{hit['location']}: {hit['file']} holds {hit['values']} sampled value(s)"
            for hit in verification["residue_scan"]["hits"]
        ]
        performed = started.get("performed_by") or {}
        certificate = certificate_body(
            remaining_copies=_copies(app, site_id),  # as they are once the server is purged
            plan=body,
            plan_hash=plan_hash,
            performed_by=performed,
            approvals=started["approvals"],
            started_at=started["at"],
            completed_at=timestamp(utc_now()),
            figures=figures,
            verification=verification,
            residues=residues,
            media_destination=started.get("media_destination") or "",
            ledger_head={"seq": head.seq, "hash": head.hash},
            backup_root=str(app.inventory.backup_path),
            tool=TOOL,
        )
        document = signed_document(certificate, [("pipeline", app.signing_key)])
        digest = write_document(path, document)
    write_html(
        folder / "certificate.html",
        "certificate.html.j2",
        title=f"Certificate of sanitization: site {site_id}",
        document=document,
        certificate_hash=digest,
    )
    from .purge_facts import latest_event

    issued = latest_event(app, site_id, CERTIFICATE_EVENT)
    if issued is None or issued.data.get("certificate_sha256") != digest:
        ledger.append(site_id, "purge", CERTIFICATE_EVENT, {"certificate_sha256": digest, "plan_sha256": plan_hash})
    return path, digest


def _certified_summary(
    app: App, site_id: str, folder: Path, plan_hash: str, journal: PurgeJournal, *, resumed: bool
) -> PurgeCertified:
    document = read_document(folder / "certificate.json", what="certificate")
    body = document["body"]
    return PurgeCertified(
        site_id=site_id,
        state=app.control_store.state(site_id).value,
        plan_sha256=plan_hash,
        certificate=str(folder / "certificate.json"),
        html=str(folder / "certificate.html"),
        certificate_sha256=journal.recorded("certified")["certificate_sha256"],
        figures=body["figures"],
        verification={k: body["verification"][k] for k in ("passed", "database", "attachments")},
        residue_scan=body["verification"]["residue_scan"]["summary"],
        residues=body["residues_for_media_sanitization"],
        resumed=resumed,
    )


# -- after the certificate: media sanitization and handover ------------------------------------------


def certified_folder(app: App, site_id: str) -> tuple[Path, dict[str, Any], str]:
    """(folder, certificate body, certificate hash) of the site's certified purge; refused before one."""
    folders = sorted(
        p.parent
        for p in purge_dir(app, site_id).glob("*/certificate.json")
        if PurgeJournal(p.parent / "journal.jsonl").has("certified")
    )
    if not folders:
        raise GateRefused(
            f"site {site_id} has no certificate of sanitization yet: run `ts24-migrate purge execute "
            f"{site_id} ...` first"
        )
    document = read_document(folders[-1] / "certificate.json", what="certificate")
    body, digest = checked_document(document, {"pipeline": trusted_public_key(app, None)}, what="certificate")
    return folders[-1], body, digest


@updates_latest
def attest_media_step(
    app: App,
    site_id: str,
    *,
    devices: list[str],
    method: str,
    tool: str,
    report: Path,
    performed_by: Person,
    date: dt.date,
) -> MediaAttested:
    """Record the media-level sanitization of a certified site's disks, as a signed addendum."""
    from purge.addenda import MEDIA_NAME, file_sha256, media_attestation_body

    folder, certificate, certificate_hash = certified_folder(app, site_id)
    if (folder / MEDIA_NAME).exists():
        raise GateRefused(
            f"site {site_id}: the media sanitization is already attested ({folder / MEDIA_NAME}); "
            f"attestations are never overwritten"
        )
    if not devices:
        raise UsageError("name every sanitized device: --device SERIAL (repeat it)")
    body = media_attestation_body(
        certificate,
        certificate_hash,
        devices=devices,
        method=method,
        tool=tool,
        report_sha256=file_sha256(report),
        report_name=report.name,
        performed_by=performed_by.model_dump(),
        date=date.isoformat(),
    )
    document = signed_document(body, [("pipeline", app.signing_key)])
    digest = write_document(folder / MEDIA_NAME, document)
    app.ledger(site_id).append(
        site_id,
        "purge",
        "purge.media_attested",
        {
            "certificate_sha256": certificate_hash,
            "media_attestation_sha256": digest,
            "devices": len(devices),
            "method": method,
            "tool": tool,
        },
    )
    return MediaAttested(
        site_id=site_id,
        media_attestation=str(folder / MEDIA_NAME),
        sha256=digest,
        certificate_sha256=certificate_hash,
        devices=devices,
    )


@updates_latest
def handover_step(app: App, site_id: str, *, receiver: Person, handed_over_by: Person, date: dt.date) -> HandedOver:
    """Record the server's return to its owner; refused until its media sanitization is attested."""
    from purge.addenda import HANDOVER_NAME, MEDIA_NAME, addendum_problems, handover_body

    folder, certificate, certificate_hash = certified_folder(app, site_id)
    public_key = trusted_public_key(app, None)
    media_path = folder / MEDIA_NAME
    if not media_path.exists():
        raise GateRefused(
            f"site {site_id}: refusing the handover: the server's disks hold copies only media "
            f"sanitization removes, and none is attested. What to do: sanitize them, then "
            f"`ts24-migrate purge attest-media {site_id} ...`"
        )
    media = read_document(media_path, what="media attestation")
    problems = addendum_problems(media, certificate_hash, public_key)
    if problems:
        raise GateRefused(
            f"site {site_id}: refusing the handover: the media attestation does not verify: {problems[0]}"
        )
    if (folder / HANDOVER_NAME).exists():
        raise GateRefused(f"site {site_id}: the handover is already recorded ({folder / HANDOVER_NAME})")
    media_hash = checked_document(media, {"pipeline": public_key}, what="media attestation")[1]
    body = handover_body(
        certificate,
        certificate_hash,
        media_hash,
        receiver=receiver.model_dump(),
        handed_over_by=handed_over_by.model_dump(),
        date=date.isoformat(),
    )
    digest = write_document(folder / HANDOVER_NAME, signed_document(body, [("pipeline", app.signing_key)]))
    app.ledger(site_id).append(
        site_id,
        "purge",
        "purge.handed_over",
        {
            "certificate_sha256": certificate_hash,
            "handover_sha256": digest,
            "receiver": receiver.name,
            "date": date.isoformat(),
        },
    )
    return HandedOver(
        site_id=site_id,
        handover=str(folder / HANDOVER_NAME),
        sha256=digest,
        receiver=receiver.name,
        date=date.isoformat(),
    )
