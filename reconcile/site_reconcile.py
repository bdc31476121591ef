"""One reconcile run of a site: delta, incremental backup, carry-over, findings, drained verdict.

In order:

1. the chain: it starts on the site's latest complete full backup (a newer
   full backup starts a new chain); increments a killed run left unsigned,
   or signed and not chained, are removed;
2. the delta of every legacy table and of the attachment folder
   (reconcile.delta, reconcile.file_delta), streamed into an incremental
   backup (backups.increment) while it is read; no increment is written
   when nothing changed;
3. the increment is chained, the watermarks and row digests move and the
   changed rows of mapped tables are queued for carry-over, in one control
   store transaction (reconcile.state);
4. the queued rows are carried over to the new system (reconcile.carry_over);
5. the findings (reconcile.findings), the chain's verification
   (backups.chain) and the drained verdict, whose criteria are:
   - no legacy dossier in statuses 0-3;
   - every legacy dossier finished and carried over: the new system shows the
     mapped legacy status of the legacy row as it is now, or the dossier is
     rejected with a reason; nothing left in the carry-over queue;
   - accounting: for every table, the chain holds as many rows as the legacy
     table, and for a mapped table, legacy rows = loaded + rejected;
   - no unprocessed delta: the legacy holds no change or key beyond what
     this run read;
   - the latest increment is in the verified chain (signatures, parent links,
     every part's hash: all of them when the other criteria hold);
   - every row compared with the chain: this run read every legacy row and
     file and compared it with the chain's digests (a sweep; a run sweeps by
     itself when it starts with no dossier in flight), so an edit that no
     change column shows cannot hide.

A run killed after its increment is chained (step 3) and before its verdict
is made leaves itself open in the state (reconcile.state.OpenRun). The next
run finishes it: it compares every row again when the killed run was a
baseline or a sweep, watches the dossiers the killed run queued, and reports
the killed run's increment as its own when it writes none itself; so its
verdict is the one the killed run would have made.

Example::

    result = reconcile_site(legacy, target, ReconcileState(store_engine), site_id="hn-01", run_id=run_id,
                            cutover=date(2025, 7, 1), attachments_dir=Path("/srv/ts24/hn-01/files"),
                            backup_root=Path("backups"), recipients=["age1..."], signing_key=key)
    result.drained, [c.name for c in result.criteria if not c.holds]
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backups.backup import site_lock
from backups.catalog import list_backups
from backups.chain import ChainLink, ChainReport, backup_folder, load_chain, verify_chain
from backups.increment import INCREMENTS_DIR, IncrementWriter, discard_unchained, discard_unsigned, file_key_table
from backups.manifest import MANIFEST_NAME, BackupManifest, read_manifest
from extract.attachments import ATTACHMENTS_KEY
from extract.discovery import TableInfo
from extract.json_values import from_json_row, from_json_value, json_row, json_value
from load import ledger
from load.bookkeeping import load_tables
from ts24_migrate.core.errors import GateRefused, UsageError
from ts24_migrate.core.legacy.schema import MAPPED_TABLES
from ts24_migrate.core.rows.fingerprint import TableFingerprint
from validation.accounting import accounting_check

from .burndown import BurndownPoint, Forecast, forecast
from .carry_over import CarryOverResult, carry_over
from .delta import Since, TableDelta, keyed_table_delta, keyless_table_delta
from .file_delta import FILES_TABLE, FileDelta, folder_delta
from .findings import (
    Dossier,
    DossierAccount,
    InFlight,
    Reregistration,
    any_in_flight,
    dossier_account,
    in_flight_dossiers,
    legacy_clock,
    legacy_tables,
    likely_duplicates,
    received_after_cutover_dossiers,
    reregistration,
    unread_changes,
)
from .state import DigestChange, Key, ReconcileState, TableState, key_text, key_values

Progress = Callable[[str, int, int], None] | None  # (item, done, total)


@dataclass(frozen=True)
class Criterion:
    name: str
    holds: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "holds": self.holds, "detail": self.detail}


@dataclass
class Reconciliation:
    site_id: str
    run_id: str
    mode: str
    as_of: dt.datetime
    cutover: dt.date
    increment: dict[str, Any] | None = None
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    carried: CarryOverResult = field(default_factory=CarryOverResult)
    in_flight: InFlight | None = None
    forbidden: list[Dossier] = field(default_factory=list)
    account: DossierAccount = field(default_factory=DossierAccount)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    reregistration: Reregistration = field(default_factory=Reregistration)
    chain: ChainReport = field(default_factory=ChainReport)
    unread: list[str] = field(default_factory=list)
    accounting: list[dict[str, Any]] = field(default_factory=list)
    criteria: list[Criterion] = field(default_factory=list)
    completes_run: str | None = None  # the killed run (increment chained, no verdict) this one finishes
    burndown: list[BurndownPoint] = field(default_factory=list)
    prediction: Forecast | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def drained(self) -> bool:
        return bool(self.criteria) and all(c.holds for c in self.criteria)

    @property
    def rows_changed(self) -> int:
        return sum(t["new"] + t["changed"] + t["deleted"] for t in self.tables.values())

    def changed_keys(self, table: str) -> list[str]:
        return list(self.tables.get(table, {}).get("changed_keys", []))

    def summary(self) -> dict[str, Any]:
        """The run's key figures (control store, ledger, artifacts): no names, no contact details."""
        flights = self.in_flight
        return {
            "mode": self.mode,
            "as_of": self.as_of.isoformat(sep=" ", timespec="seconds"),
            "drained": self.drained,
            "in_flight": flights.count if flights else None,
            "in_flight_by_status": flights.by_status if flights else {},
            "overdue": len(flights.overdue) if flights else None,
            "received_after_cutover": len(self.forbidden),
            "drift": len(self.account.drift),
            "likely_duplicates": len(self.duplicates),
            **self.reregistration.summary(),
            "rows_changed": self.rows_changed,
            "carried_over": self.carried.carried,
            "blocked": len(self.carried.blocked),
            "increment": (self.increment or {}).get("backup_id"),
            "manifest_fingerprint": (self.increment or {}).get("manifest_fingerprint"),
            "chain_ok": self.chain.ok,
            "completes_run": self.completes_run,
            "forecast_drain_date": (self.prediction.to_dict()["drain_date"] if self.prediction else None),
            "seconds": round(self.seconds, 3),
        }


def latest_full_backup(backup_root: Path, site_id: str, known: str | None = None) -> BackupManifest:
    """The site's latest complete full backup; `known` (the chain's base) short-cuts the search."""
    site_dir = Path(backup_root) / site_id
    if known is not None and (site_dir / known / MANIFEST_NAME).exists():
        newer = [
            p
            for p in site_dir.iterdir()
            if p.is_dir() and p.name > known and (p / MANIFEST_NAME).exists() and p.name != INCREMENTS_DIR
        ]
        if not newer:
            return read_manifest(site_dir / known)
    complete = [
        b
        for b in list_backups(backup_root, site_id)
        if b.status == "complete" and b.summary.get("kind", "full") == "full"
    ]
    if not complete:
        raise UsageError(
            f"site {site_id} has no complete full backup under {site_dir}: "
            f"back it up first (`ts24-migrate backup {site_id}`)"
        )
    return read_manifest(complete[-1].path)


def _require_loaded(target: Engine, site_id: str) -> None:
    """Carry-over merges into what the load wrote: the site's load must be complete."""
    incomplete = list(MAPPED_TABLES)
    if sa.inspect(target).has_table(load_tables.name):
        with target.connect() as conn:
            done = set(
                conn.execute(sa.select(load_tables.c.legacy_table).where(load_tables.c.site_id == site_id)).scalars()
            )
        incomplete = [t for t in MAPPED_TABLES if t not in done]
    if incomplete:
        raise GateRefused(
            f"site {site_id} is not loaded into the new system ({', '.join(incomplete)} not "
            f"complete): run `ts24-migrate load {site_id}` before reconciling"
        )


def _baseline_start(manifest: BackupManifest, name: str, keyed: bool) -> tuple[TableState, Since]:
    entry = manifest.tables.get(name)
    if entry is None:
        return TableState(name), Since(everything=True)
    watermark = from_json_value((entry.get("watermark") or {}).get("max"))
    last = None
    if keyed and entry["parts"] and entry["parts"][-1].get("key_range"):
        last = from_json_row(entry["parts"][-1]["key_range"]["last"])
    chain = TableFingerprint() if keyed else TableFingerprint.parse(entry["fingerprint"])
    return TableState(name, watermark, last, chain), Since(watermark, last, base_fingerprint=entry["fingerprint"])


def _completed_at(manifest: BackupManifest) -> dt.datetime | None:
    text = manifest.data.get("created_at") or manifest.data.get("completed_at")
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def reconcile_site(
    legacy: Engine,
    target: Engine,
    state: ReconcileState,
    *,
    site_id: str,
    run_id: str,
    cutover: dt.date,
    attachments_dir: Path | None,
    backup_root: Path,
    recipients: list[str],
    signing_key: Any,
    public_key_b64: str | None = None,
    chunk_rows: int = 50_000,
    sweep: bool | None = None,
    as_of: dt.datetime | None = None,
    history: Sequence[BurndownPoint] = (),
    reference_date: dt.date | None = None,
    progress: Progress = None,
) -> Reconciliation:
    """Run one reconciliation of the site (see the module docstring); returns what it did and found."""
    started = time.perf_counter()
    public_key_b64 = public_key_b64 or signing_key.public_key_b64
    _require_loaded(target, site_id)
    with legacy.connect() as conn:
        tables = legacy_tables(conn)
        clock = legacy_clock(conn, tables)
    moment = as_of or clock or dt.datetime.now()
    current_base = state.base(site_id)
    base = latest_full_backup(backup_root, site_id, current_base[0] if current_base else None)
    if current_base is None or current_base[0] != base.backup_id:
        state.start_chain(site_id, base.backup_id, base.fingerprint)
    states = state.table_states(site_id)
    interrupted = state.open_run(site_id)
    if not states:
        mode = "baseline"
    elif sweep is None:  # a run sweeps by itself when it starts with no dossier in flight
        with legacy.connect() as conn:
            mode = "delta" if any_in_flight(conn, tables) else "sweep"
    else:
        mode = "sweep" if sweep else "delta"
    if mode == "baseline":
        state.start_chain(site_id, base.backup_id, base.fingerprint)  # a killed baseline starts over
    elif interrupted is not None and interrupted.mode in ("baseline", "sweep"):
        mode = "sweep"  # the killed run's comparison of every row with the chain, made again
    # A killed baseline finished by a sweep reports as the baseline it completes.
    result = Reconciliation(
        site_id,
        run_id,
        "baseline" if interrupted and interrupted.mode == "baseline" and mode == "sweep" else mode,
        moment,
        cutover,
    )
    result.completes_run = interrupted.run_id if interrupted is not None else None

    with site_lock(Path(backup_root) / site_id):
        discard_unsigned(backup_root, site_id)
        links = state.chain(site_id)
        discard_unchained(backup_root, site_id, head_backup_id=links[-1].backup_id, head_seq=links[-1].seq)
        parent = read_manifest(backup_folder(backup_root, site_id, links[-1]))
        writer = IncrementWriter(
            backup_root,
            site_id,
            parent=parent,
            seq=links[-1].seq + 1,
            run_id=run_id,
            recipients=recipients,
            signing_key=signing_key,
            source_dialect=legacy.dialect.name,
            chunk_rows=chunk_rows,
        )
        try:
            deltas, next_states, changes = _table_deltas(
                legacy, state, site_id, mode, base, states, tables, writer, chunk_rows, result, progress
            )
            files = None
            if attachments_dir is not None:
                files = _folder_delta(Path(attachments_dir), state, site_id, mode, base, states, writer)
                next_states.append(TableState(FILES_TABLE, watermark=files.stamp, chain=files.chain))
                changes += files.changes
                result.files = files.figures()
            changed = any(d.emitted or d.deleted_keys for d in deltas) or bool(files and (files.files or files.deleted))
            if changed or mode == "baseline":
                manifest = writer.finish({"reconcile": {"mode": mode, "run_id": run_id}})
                link = ChainLink(writer.seq, manifest.backup_id, "incremental", manifest.fingerprint, run_id)
                queued = [
                    (d.name, key_text(k)) for d in deltas if d.name.upper() in MAPPED_TABLES for k in d.changed_keys
                ]
                state.commit_increment(site_id, link, next_states, changes, queued, mode=result.mode)
                result.increment = manifest.summary()
                result.increment["chain_seq"] = writer.seq
            else:
                writer.discard()
        except BaseException:
            writer.discard()
            raise

    if result.increment is None and interrupted is not None:
        result.increment = _increment_of(backup_root, state, site_id, interrupted)
    # What this run (or the killed run it finishes) queued: its verdict watches those dossiers.
    queued_before = state.pending(site_id)
    result.carried = carry_over(
        legacy,
        target,
        state,
        site_id=site_id,
        run_id=run_id,
        cutover=cutover,
        attachments_dir=attachments_dir,
        reference_date=reference_date,
        tables=tables,
    )
    _findings(legacy, target, state, result, tables, backup_root, public_key_b64, history, queued_before)
    state.close_runs(site_id)
    result.seconds = time.perf_counter() - started
    return result


def _increment_of(backup_root: Path, state: ReconcileState, site_id: str, run: Any) -> dict[str, Any] | None:
    """The increment a killed run chained, as the run finishing it reports it."""
    for link in state.chain(site_id):
        if link.backup_id == run.backup_id:
            summary = read_manifest(backup_folder(backup_root, site_id, link)).summary()
            return {**summary, "chain_seq": link.seq, "written_by_run": run.run_id}
    return None


def _table_deltas(
    legacy: Engine,
    state: ReconcileState,
    site_id: str,
    mode: str,
    base: BackupManifest,
    states: dict[str, TableState],
    tables: dict[str, TableInfo],
    writer: IncrementWriter,
    chunk_rows: int,
    result: Reconciliation,
    progress: Progress,
) -> tuple[list[TableDelta], list[TableState], list[DigestChange]]:
    deltas: list[TableDelta] = []
    next_states: list[TableState] = []
    changes: list[DigestChange] = []
    parent_keys: dict[str, list[Key]] = {}
    infos = sorted(tables.values(), key=lambda t: t.name)
    for name in sorted(set(states) - {t.name for t in infos} - {FILES_TABLE}):
        result.warnings.append(f"{name}: the chain holds this table but the legacy database no longer has it")
    with legacy.connect() as conn:
        for done, info in enumerate(infos):
            if progress:
                progress(info.name, done, len(infos))
            keyed = bool(info.primary_key)
            if mode == "baseline":
                previous, since = _baseline_start(base, info.name, keyed)
            else:
                previous = states.get(info.name) or TableState(info.name)
                since = Since(previous.watermark, previous.max_key, everything=info.name not in states)
            parts = writer.table(info)
            if keyed:
                delta = keyed_table_delta(
                    conn,
                    info,
                    previous,
                    state,
                    site_id,
                    mode=mode,
                    since=since,
                    parent_keys=parent_keys,
                    chunk_rows=chunk_rows,
                    emit=parts.add_rows,
                )
            else:
                delta = keyless_table_delta(conn, info, previous, chunk_rows=chunk_rows, emit=parts.add_rows)
            parent_keys[info.name.upper()] = delta.changed_keys
            after = delta.state
            assert after is not None  # both deltas end with the table's state
            writer.finish_table(
                parts,
                {
                    "mode": delta.mode,
                    "since": {
                        "watermark": json_value(since.watermark),
                        "max_key": json_row(since.max_key),
                        "everything": since.everything,
                    },
                    "count_at_start": delta.live_rows,
                    "watermark": (
                        {"column": info.watermark_column, "max": json_value(after.watermark)}
                        if info.watermark_column
                        else None
                    ),
                    "max_key": json_row(after.max_key),
                    "chain": {"rows": after.chain.rows, "fingerprint": after.chain.hexdigest()},
                    "changes": {"new": delta.new, "changed": delta.changed, "deleted": len(delta.deleted_keys)},
                },
                table=info,
            )
            if delta.deleted_keys:
                tombstones = writer.tombstones(info)
                tombstones.add_rows(delta.deleted_keys)
                writer.finish_table(tombstones, {"mode": "tombstones", "deletes_from": info.name})
            deltas.append(delta)
            next_states.append(after)
            changes += delta.changes
            result.tables[info.name] = {
                **delta.figures(),
                "emitted": delta.emitted,
                "chain_fingerprint": after.chain.hexdigest(),
                "changed_keys": [key_text(k) for k in delta.changed_keys],
            }
    return deltas, next_states, changes


def _folder_delta(
    root: Path,
    state: ReconcileState,
    site_id: str,
    mode: str,
    base: BackupManifest,
    states: dict[str, TableState],
    writer: IncrementWriter,
) -> FileDelta:
    previous = states.get(FILES_TABLE, TableState(FILES_TABLE))
    base_print = (base.attachments or {}).get("fingerprint")
    delta = folder_delta(
        root,
        previous.chain,
        state,
        site_id,
        mode=mode,
        base_fingerprint=base_print,
        base_started=_completed_at(base),
        previous_stamp=previous.watermark,
    )
    writer.add_files(
        delta.files,
        {
            "mode": "delta",
            "chain": {"rows": delta.chain.rows, "fingerprint": delta.chain.hexdigest()},
            "changes": {"new": delta.new, "changed": delta.changed, "deleted": len(delta.deleted)},
        },
    )
    if delta.deleted:
        tombstones = writer.tombstones(file_key_table())
        tombstones.add_rows([(path,) for path in delta.deleted])
        writer.finish_table(tombstones, {"mode": "tombstones", "deletes_from": ATTACHMENTS_KEY})
    return delta


def _findings(
    legacy: Engine,
    target: Engine,
    state: ReconcileState,
    result: Reconciliation,
    tables: dict[str, TableInfo],
    backup_root: Path,
    public_key_b64: str,
    history: Sequence[BurndownPoint],
    queued_before: dict[str, list[str]] | None = None,
) -> None:
    site_id = result.site_id
    states = state.table_states(site_id)
    with legacy.connect() as conn, target.connect() as tconn:
        result.in_flight = in_flight_dossiers(conn, as_of=result.as_of, tables=tables)
        result.forbidden = received_after_cutover_dossiers(
            conn, cutover=result.cutover, as_of=result.as_of, tables=tables
        )
        watched = None
        if result.mode == "delta":  # unchanged dossiers are compared by the next sweep
            name = tables["HO_SO"].name
            pending_dossiers = [*(queued_before or {}).get(name, []), *state.pending(site_id).get(name, [])]
            watched = list(dict.fromkeys(key_values(k)[0] for k in [*result.changed_keys(name), *pending_dossiers]))
        result.account = dossier_account(conn, tconn, state, site_id=site_id, tables=tables, only=watched)
        result.duplicates = likely_duplicates(tconn, result.in_flight)
        result.reregistration = reregistration(conn, tconn, tables=tables)
        result.unread = unread_changes(
            conn, tables, {n: s.watermark for n, s in states.items()}, {n: s.max_key for n, s in states.items()}
        )
    pending = {t: k for t, k in state.pending(site_id).items() if t.upper() in MAPPED_TABLES}
    result.accounting = _accounting(result, states, target)
    result.burndown = [*history, BurndownPoint(result.as_of, result.in_flight.count)]
    result.prediction = forecast(result.burndown)

    no_flight = result.in_flight.count == 0
    carried = result.account.all_accounted and not pending
    accounted = all(row["ok"] for row in result.accounting)
    read_all = not result.unread
    swept = result.mode in ("sweep", "baseline")
    manifests = load_chain(backup_root, site_id, state.chain(site_id))
    full_check = no_flight and carried and accounted and read_all and swept
    result.chain = verify_chain(
        manifests,
        public_key_b64=public_key_b64,
        links=state.chain(site_id),
        ciphertext="all" if full_check else "latest",
    )
    head_is_increment = len(manifests) > 1
    by_status = ", ".join(f"{k} {v}" for k, v in result.in_flight.by_status.items() if v)
    result.criteria = [
        Criterion(
            "no dossier in flight",
            no_flight,
            "no legacy dossier in statuses 0-3"
            if no_flight
            else f"{result.in_flight.count} dossiers in statuses 0-3 ({by_status})",
        ),
        Criterion(
            "every dossier finished and carried over",
            carried,
            f"{result.account.current} carried over with their current status, {result.account.rejected} "
            f"rejected with a reason, of {result.account.dossiers}"
            + (
                " (the dossiers changed since the last run; all of them at the next sweep)"
                if result.account.scope == "watched"
                else ""
            )
            + f"; {len(result.account.drift)} drifting; "
            f"{sum(len(k) for k in pending.values())} rows waiting for carry-over",
        ),
        Criterion(
            "accounting",
            accounted,
            "chain rows = legacy rows for every table; legacy rows = loaded + rejected for mapped tables"
            if accounted
            else "; ".join(p for row in result.accounting for p in row["problems"])[:500],
        ),
        Criterion(
            "no unprocessed delta",
            read_all,
            "the legacy holds no change beyond what this run read" if read_all else "; ".join(result.unread),
        ),
        Criterion(
            "latest increment in the verified chain",
            result.chain.ok and head_is_increment,
            _chain_detail(result, manifests, head_is_increment),
        ),
        Criterion(
            "every row compared with the chain",
            swept,
            f"this run ({result.mode}) compared every legacy row and file with the chain's digests"
            if swept
            else "this run read only the delta; the first run that finds no dossier in flight compares every row",
        ),
    ]


def _chain_detail(result: Reconciliation, manifests: list[BackupManifest], head: bool) -> str:
    if not result.chain.ok:
        return result.chain.problems[0]
    if not head:
        return "the chain has no increment yet"
    return (
        f"{len(manifests)} backups chained up to {manifests[-1].backup_id}; signatures and parent links "
        f"hold, {result.chain.parts_checked} parts' hashes checked"
    )


def _accounting(result: Reconciliation, states: dict[str, TableState], target: Engine) -> list[dict[str, Any]]:
    """Invariant 1 for the chain: legacy rows = rows in the chain; mapped: = loaded + rejected.

    Loaded and rejected are the load ledger's sums (which the carry-over keeps), held against
    the crosswalk and the rejects themselves."""
    figures: dict[str, dict[str, Any]] = {}
    problems: dict[str, list[str]] = {}
    with target.connect() as conn:
        for name, table in result.tables.items():
            chain = states.get(name)
            entry: dict[str, Any] = {"source": table["live_rows"], "backed_up": chain.chain.rows if chain else 0}
            if name.upper() in MAPPED_TABLES:
                book = ledger.table_figures(conn, result.site_id, name.upper())
                entry.update(loaded=book["loaded"], rejected=book["rejected"], conflicts=book["conflicts"])
                recorded = sum(book["rejects_by_reason"].values())
                if book["crosswalk_rows"] != book["loaded"] or recorded != book["rejected"]:
                    problems[name] = [
                        f"the load ledger says {book['loaded']} loaded and {book['rejected']} "
                        f"rejected; the bookkeeping holds {book['crosswalk_rows']} crosswalk rows "
                        f"and {recorded} rejects"
                    ]
            figures[name] = entry
    rows = [row.to_dict() for row in accounting_check(figures)]
    for row in rows:
        extra = problems.get(row["table"], [])
        row["problems"] += extra
        row["ok"] = row["ok"] and not extra
    return rows
