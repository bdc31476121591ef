"""What the purge gates look at, gathered from the site: the legacy target, the chain, the ledger, the
live scope; and the gates themselves (purge/gates.py names them).

Gathered once per plan or execution, read-only: nothing here changes the site.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, Engine

from audit.events import LedgerEvent
from audit.ledger import read_events
from audit.verify import LedgerVerification, verify_ledger
from backups.chain import ChainLink, ChainReport, chain_fingerprints, load_chain, verify_chain
from backups.manifest import BackupManifest
from purge.gates import GateResult, differences
from purge.objects import chain_object_fingerprints
from purge.plan import LiveScope, survey_live
from purge.scope import SQLITE_SIDE_SUFFIXES, scope_problems
from purge.write_stop import WriteStopCheck, check_writes_stopped
from reconcile.state import ReconcileState
from ts24_migrate.core.config import SiteConfig
from ts24_migrate.core.control_store import RunRecord, SiteState
from ts24_migrate.core.db import legacy_engine, parse_url
from ts24_migrate.core.errors import ConfigError, GateRefused, Ts24Error
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.server_identity import ServerIdentity
from ts24_migrate.core.stage_runs import StageRun
from ts24_migrate.runs.app import App

from .server_check import check_legacy_server

PURGE_STAGE = "purge"
CHAIN_VERIFIED = "purge.chain_verified"
WRITES_STOPPED = "purge.writes_stopped"
PRE_PURGE_STATES = (SiteState.DRAINED, SiteState.FINAL_BACKUP_VERIFIED, SiteState.PURGE_APPROVED)
SYSTEM_DATABASES = {"mysql", "information_schema", "performance_schema", "sys", "master", "model", "msdb", "tempdb"}
SERVER_FIELDS = ("kind", "host", "port", "server_id")  # what a server-level connection (no database) must match


@dataclass
class LegacyTarget:
    """The site's legacy database as the purge addresses it."""

    site: SiteConfig
    kind: str  # sqlite | mariadb | mysql | mssql
    database: str  # a SQLite database's resolved file, else the database's name
    url: Secret
    sqlite_path: Path | None
    attachments: Path | None

    def database_files(self) -> list[Path]:
        """A SQLite database's file and the side files that exist now."""
        if self.sqlite_path is None:
            return []
        candidates = [
            self.sqlite_path,
            *(self.sqlite_path.with_name(self.sqlite_path.name + s) for s in SQLITE_SIDE_SUFFIXES),
        ]
        return [p for p in candidates if p.exists()]

    def server_engine(self, *, read_only: bool) -> Engine:
        """An engine on the server itself, not on the site's database (which the purge drops)."""
        parsed = parse_url(self.url, what="legacy connection")
        server = URL.create(
            parsed.drivername,
            parsed.username,
            parsed.password,
            parsed.host,
            parsed.port,
            "master" if self.kind == "mssql" else None,
            parsed.query,
        )
        return legacy_engine(Secret(server.render_as_string(hide_password=False)), read_only=read_only)


def legacy_target(app: App, site_id: str, identity: ServerIdentity | None = None) -> LegacyTarget:
    site = app.site(site_id)
    url = app.inventory.legacy_url(site)
    parsed = parse_url(url, what="legacy connection")
    backend = parsed.get_backend_name()
    attachments = app.inventory.attachments_path(site)
    if backend == "sqlite":
        path = Path(os.path.realpath(parsed.database or ""))
        return LegacyTarget(site, "sqlite", str(path), url, path, attachments)
    if backend in ("mysql", "mariadb", "mssql"):
        if not parsed.database:
            raise ConfigError(
                "the legacy URL names no database: the purge drops exactly one, named in the URL",
                site=site_id,
                field="legacy",
            )
        kind = "mssql" if backend == "mssql" else (identity.kind if identity is not None else "mariadb")
        return LegacyTarget(site, kind, parsed.database, url, None, attachments)
    raise ConfigError(
        f"the purge supports SQLite, MariaDB/MySQL and SQL Server legacy databases, not {backend}",
        site=site_id,
        field="legacy",
    )


def _store_file(url: Secret) -> Path | None:
    parsed = parse_url(url, what="store connection")
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def scope_gate(app: App, target: LegacyTarget) -> GateResult:
    inventory = app.inventory
    protected: dict[str, Path | None] = {"backup folder": inventory.backup_path, "work folder": inventory.work_path}
    for what, url in (("target database", inventory.target_url), ("control store", inventory.control_store_url)):
        try:
            protected[what] = _store_file(url())
        except Ts24Error:
            pass
    others = {
        s.id: path
        for s in inventory.sites
        if s.id != target.site.id and (path := inventory.attachments_path(s)) is not None
    }
    problems = []
    if target.attachments is not None and not Path(target.attachments).is_dir():
        problems.append(f"the attachment folder {target.attachments} does not exist or is not a folder")
    problems += scope_problems(
        attachments=target.attachments, protected=protected, other_sites=others, legacy_file=target.sqlite_path
    )
    if target.kind != "sqlite":
        if target.database.lower() in SYSTEM_DATABASES:
            problems.append(f"the legacy database {target.database} is a system database of the server")
        legacy = parse_url(target.url, what="legacy connection")
        for what, url in (("target database", inventory.target_url), ("control store", inventory.control_store_url)):
            try:
                other = parse_url(url(), what=what)
            except Ts24Error:
                continue
            if (other.get_backend_name(), other.host, other.port, other.database) == (
                legacy.get_backend_name(),
                legacy.host,
                legacy.port,
                legacy.database,
            ):
                problems.append(f"the legacy database is the {what}")
    detail = (
        "; ".join(problems)
        if problems
        else (
            f"only {target.database} and the files under {target.attachments} are in scope; the backup and work "
            f"folders, the target, the control store and the other sites' folders are outside it"
        )
    )
    return GateResult.check(
        "scope",
        not problems,
        detail,
        remedy="fix sites.yaml (attachments, backup_dir, work_dir, legacy) so that the site's "
        "folder and database hold nothing else, then plan again",
    )


def server_gate(app: App, site_id: str, run: StageRun) -> tuple[GateResult, ServerIdentity | None]:
    try:
        reached = check_legacy_server(app, site_id, run)
    except GateRefused as exc:
        return GateResult(
            "server_identity", False, str(exc), "fix the legacy URL, or re-assess if the database really moved"
        ), None
    assessed = app.control_store.latest_run(site_id, "assess")
    if assessed is None:
        return GateResult(
            "server_identity", False, "the site was never assessed", f"run `ts24-migrate assess {site_id}`"
        ), reached
    return GateResult(
        "server_identity",
        True,
        f"reached {reached.describe()}: the server the assessment (run {assessed.run_id}) recorded",
    ), reached


def latest_event(app: App, site_id: str, name: str) -> LedgerEvent | None:
    path = app.ledger_path(site_id)
    if not path.exists():
        return None
    found = None
    for _line, event, _problem in read_events(path):
        if event is not None and event.event == name and event.site == site_id:
            found = event
    return found


@dataclass
class ChainFacts:
    links: list[ChainLink] = field(default_factory=list)
    manifests: list[BackupManifest] = field(default_factory=list)
    report: ChainReport | None = None
    problem: str | None = None

    def head(self) -> dict[str, Any] | None:
        if not self.manifests:
            return None
        return backup_entry(self.manifests[-1])

    def entries(self) -> list[dict[str, Any]]:
        return [backup_entry(m) for m in self.manifests]


def backup_entry(manifest: BackupManifest) -> dict[str, Any]:
    return {
        "backup_id": manifest.backup_id,
        "kind": manifest.data.get("kind", "full"),
        "manifest_fingerprint": manifest.fingerprint,
    }


def chain_facts(app: App, site_id: str, public_key: str, *, hash_parts: bool = True) -> ChainFacts:
    facts = ChainFacts(links=ReconcileState(app.control_store.engine).chain(site_id))
    try:
        facts.manifests = load_chain(app.inventory.backup_path, site_id, facts.links)
    except Ts24Error as exc:
        facts.problem = str(exc)
        return facts
    if hash_parts:
        facts.report = verify_chain(facts.manifests, public_key_b64=public_key, links=facts.links, ciphertext="all")
    return facts


@dataclass
class SiteFacts:
    target: LegacyTarget
    server: ServerIdentity | None
    server_gate: GateResult
    scope_gate: GateResult
    state: SiteState
    reconcile: RunRecord | None
    write_stop: WriteStopCheck
    chain: ChainFacts
    verification: LedgerEvent | None
    live: LiveScope | None
    validation: RunRecord | None
    ledger: LedgerVerification | None
    ledger_problem: str | None = None


def write_stop_check(app: App, target: LegacyTarget) -> WriteStopCheck:
    accounts = list(target.site.purge.application_accounts)
    if target.kind == "sqlite":
        return check_writes_stopped(
            None, kind="sqlite", database=target.database, files=target.database_files(), accounts=accounts
        )
    stopped = latest_event(app, target.site.id, WRITES_STOPPED)
    engine = app.legacy_engine(target.site)
    with engine.connect() as conn:
        return check_writes_stopped(
            conn,
            kind=target.kind,
            database=target.database,
            files=[],
            accounts=accounts,
            stopped_at_connection=(stopped.data.get("connection_id") if stopped else None),
        )


def survey(app: App, target: LegacyTarget) -> LiveScope:
    with app.legacy_engine(target.site).connect() as conn:
        return survey_live(
            conn,
            kind=target.kind,
            database=target.database,
            attachments_root=target.attachments,
            sqlite_path=target.sqlite_path,
        )


def gather(app: App, site_id: str, run: StageRun, public_key: str) -> SiteFacts:
    """Everything the gates need, read-only. The live scope is read only from the assessed server."""
    store = app.control_store
    gate, reached = server_gate(app, site_id, run)
    target = legacy_target(app, site_id, reached)
    scope = scope_gate(app, target)
    live = survey(app, target) if gate.holds and scope.holds else None
    stop = write_stop_check(app, target) if gate.holds else WriteStopCheck(False, "", "not checked: wrong server")
    try:
        ledger = verify_ledger(app.ledger_path(site_id), [public_key])
        problem = None
    except Ts24Error as exc:
        ledger, problem = None, str(exc)
    return SiteFacts(
        target=target,
        server=reached,
        server_gate=gate,
        scope_gate=scope,
        state=store.state(site_id),
        reconcile=store.latest_run(site_id, "reconcile"),
        write_stop=stop,
        chain=chain_facts(app, site_id, public_key),
        verification=latest_event(app, site_id, CHAIN_VERIFIED),
        live=live,
        validation=store.latest_run(site_id, "validate", outcome=None),
        ledger=ledger,
        ledger_problem=problem,
    )


def objects_reference(facts: SiteFacts) -> tuple[dict[str, Any] | None, str]:
    """The object definitions the live ones must equal, and where they come from."""
    recorded = chain_object_fingerprints(facts.chain.manifests)
    if recorded is not None:
        return recorded, "the backup chain's record of object definitions"
    if facts.verification is not None:
        return (
            dict(facts.verification.data.get("objects") or {}),
            "the custodian-verified record of `purge prepare` (these backups hold no object definitions)",
        )
    return None, "nothing (no custodian verification yet)"


def purge_gates(facts: SiteFacts) -> list[GateResult]:
    site_id = facts.target.site.id
    results = [facts.scope_gate, facts.server_gate]

    drained = facts.reconcile is not None and bool(facts.reconcile.figures.get("drained"))
    results.append(
        GateResult.check(
            "drained",
            facts.state in PRE_PURGE_STATES and drained,
            f"state {facts.state.value}; latest reconciliation "
            + (
                f"(run {facts.reconcile.run_id}) found it {'drained' if drained else 'NOT drained'}"
                if facts.reconcile
                else "none"
            ),
            remedy=f"run `ts24-migrate reconcile run {site_id}` until every dossier is finished and carried over",
        )
    )

    results.append(
        GateResult.check(
            "writes_stopped",
            facts.write_stop.holds,
            f"{facts.write_stop.method}: {facts.write_stop.detail}",
            remedy=f"run `ts24-migrate purge prepare {site_id} --identity CUSTODIAN_IDENTITY` (it stops writes, takes "
            f"the final increment and has the custodian verify the chain)",
        )
    )

    chain, event = facts.chain, facts.verification
    head = chain.head()
    verified_head = (event.data.get("chain_head") or {}) if event is not None else {}
    stop_event_seq = (event.data.get("writes_stopped_event") or {}).get("seq") if event is not None else None
    final = (
        chain.problem is None
        and chain.report is not None
        and chain.report.ok
        and head is not None
        and event is not None
        and verified_head.get("manifest_fingerprint") == head["manifest_fingerprint"]
        and stop_event_seq is not None
        and stop_event_seq < event.seq
    )
    if chain.problem is not None:
        detail = chain.problem
    elif chain.report is not None and not chain.report.ok:
        detail = f"the backup chain does not verify: {chain.report.problems[0]}"
    elif event is None:
        detail = "no final increment was taken and verified under a write stop"
    elif verified_head.get("manifest_fingerprint") != (head or {}).get("manifest_fingerprint"):
        detail = (
            f"the chain head is {(head or {}).get('backup_id')}, the custodian verified "
            f"{verified_head.get('backup_id')}: the chain grew since"
        )
    elif chain.report is None or head is None:
        detail = "no backup chain was read to check"
    elif stop_event_seq is None or stop_event_seq >= event.seq:
        detail = "the chain head was verified before the writes were stopped, not under the write stop"
    else:
        detail = (
            f"final increment taken under the write stop; chain of {len(chain.manifests)} backups up to "
            f"{head['backup_id']} verifies ({chain.report.parts_checked} parts hashed)"
        )
    results.append(
        GateResult.check(
            "final_backup", final, detail, remedy=f"run `ts24-migrate purge prepare {site_id} --identity ...` again"
        )
    )

    drill = (event.data.get("restore_drill") or {}) if event is not None else {}
    custodian = event is not None and bool(event.data.get("decrypted")) and bool(drill.get("ok"))
    results.append(
        GateResult.check(
            "custodian_verification",
            custodian and final,
            (
                f"custodian {event.data.get('custodian_recipient', '')[:16]}... decrypted {event.data.get('parts_decrypted')} "
                f"parts; restore drill of {len(drill.get('tables') or {})} tables into a scratch database matched"
                if custodian and event is not None
                else "no decrypting verification and restore drill of the current chain head"
            ),
            remedy=f"a custodian runs `ts24-migrate purge prepare {site_id} --identity THEIR_IDENTITY`",
        )
    )

    results.append(_live_gate(facts))

    validation = facts.validation
    passed = validation is not None and validation.outcome == "succeeded" and bool(validation.figures.get("passed"))
    results.append(
        GateResult.check(
            "validation_passed",
            passed,
            f"latest validation run {validation.run_id}: {validation.figures.get('verdict') or validation.outcome}"
            if validation
            else "the site was never validated",
            remedy=f"run `ts24-migrate validate {site_id}` and resolve what it reports",
        )
    )

    ledger = facts.ledger
    results.append(
        GateResult.check(
            "ledger_verifies",
            ledger is not None and ledger.ok,
            (f"{ledger.events} events, head seq {ledger.head_seq}" if ledger.ok else ledger.problems[0])
            if ledger is not None
            else str(facts.ledger_problem),
            remedy=f"run `ts24-migrate audit verify --site {site_id}` and have the damage investigated; never purge "
            f"on a ledger that does not verify",
        )
    )
    return results


def _live_gate(facts: SiteFacts) -> GateResult:
    remedy = (
        f"find out what changed the legacy data after the final backup (the write stop should prevent it), "
        f"then run `ts24-migrate purge prepare {facts.target.site.id} --identity ...` again"
    )
    if facts.live is None:
        return GateResult("live_equals_chain", False, "not compared: the server or the scope gate failed", remedy)
    if not facts.chain.manifests:
        return GateResult("live_equals_chain", False, "no backup chain to compare with", remedy)
    expected = chain_fingerprints(facts.chain.manifests)
    found = facts.live.table_fingerprints()
    lines = differences(expected, found, what="table")
    objects, source = objects_reference(facts)
    live_objects = facts.live.object_fingerprints()
    unreadable = [k for k, v in live_objects.items() if v is None]
    if objects is None:
        lines.append("no record of object definitions to compare with")
    else:
        lines += differences(objects, live_objects, what="object")
    lines += [f"object {k}: its definition cannot be read by this account" for k in unreadable]
    if lines:
        return GateResult(
            "live_equals_chain", False, "live data differs from the verified chain: " + "; ".join(lines), remedy
        )
    files = sum(e.kind == "file" for e in facts.live.attachments)
    return GateResult(
        "live_equals_chain",
        True,
        f"{len(facts.live.tables)} tables, {len(live_objects)} objects (against {source}) and "
        f"{files} files equal the verified chain",
    )
