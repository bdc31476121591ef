"""Where a site's legacy data remains outside the legacy server, and why: the register of copies.

The legacy server is purged; every other place the tool put legacy data must
be named (the purge plan and the certificate list them) and, when it is not
kept on purpose, destroyed with the site:

| copy | holds | disposition |
|---|---|---|
| backup chain (`backups/<site>/`) | every row and file, age-encrypted; clear-text manifests with each part's key range | kept by design, by the custodians |
| the new system (target) | the loaded rows, lineage, crosswalk, rejects and flags with their original values | kept by design |
| control store | run figures (examples masked); reconcile state: each legacy row's key and digest | kept until the site is certified |
| audit ledger | signed events with run figures, no row values | kept by design |
| reports (`work/sites/<site>/reports/<run>/`) | figures, examples masked | kept, personal data masked |
| Data Docs | expectation results, unexpected values masked | kept, personal data masked |
| outreach CSV | contact details of units to re-register (0600) | delete after the outreach |
| report copies (`report --out`) | a report handed to an auditor | kept by whoever holds it |
| scratch restores (`backup restore`, `reconcile restore-chain`) | every restored row and file | destroy with the site |
| load staging tables | transformed rows of one chunk | none left: temporary, dropped with each load session (verified) |
| transform key stores | keys (insurance and ID numbers) | none left: unlinked as they are made |

Scratch restores are recorded in the control store as the restore starts
(the run's `scratch` figure), so even a killed restore is known; `destroy_scratch_copies`
removes them (and any staging table left in the target) and records that it did.

Example::

    for copy in remaining_copies(app, "hn-01"):
        print(copy.kind, copy.location, copy.exists, copy.disposition.value)
    destroy_scratch_copies(app, "hn-01")        # the scratch restores, then listed as destroyed
"""

from __future__ import annotations

import enum
import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ts24_migrate.core.db import parse_url, store_engine
from ts24_migrate.core.errors import UnreachableError
from ts24_migrate.core.personal_data import key_kind
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.secrets import Secret, redact_url

if TYPE_CHECKING:
    from audit.ledger import Ledger
    from ts24_migrate.core.config import Inventory, SiteConfig
    from ts24_migrate.core.control_store import ControlStore

SCRATCH = "scratch"  # the figure of a restore run naming its scratch database and folder
RESTORE_STAGES = ("restore-check", "restore-chain", "purge-prepare")  # purge-prepare: a drill into a server
REPORT_COPY_STAGE = "report-copy"  # `report --out`: a copy of a report handed over
DESTROY_STAGE = "destroy-copies"
# Tables the load makes per chunk (load.staging.stage_table, load.merge's plan table): TEMPORARY, so a
# session's end drops them; one found in a schema of the target is a leftover.
STAGING_PREFIXES = ("ts24_stage_", "ts24_plan_")
KEY_STORE_PREFIX = "ts24-keys-"  # ts24_migrate.core.key_store.private_temporary_database's folders
OUTREACH_CSV = "reregistration-outreach.csv"  # reconcile.report.OUTREACH_CSV
DATA_DOCS_DIR = "data-docs"  # validation.report.DATA_DOCS_DIR
PARTIAL = ".{name}.partial"  # where ts24_migrate.runs.scratch writes a restore until it matches
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class SiteApp(Protocol):
    """What the register needs of the tool's App (ts24_migrate.runs.app.App, a layer above purge)."""

    @property
    def inventory(self) -> Inventory: ...

    @property
    def control_store(self) -> ControlStore: ...

    def site(self, site_id: str) -> SiteConfig: ...

    def target_engine(self) -> Engine: ...

    def ledger_path(self, site_id: str) -> Path: ...

    def ledger(self, site_id: str) -> Ledger: ...

    def reports_dir(self, site_id: str) -> Path: ...


class Disposition(str, enum.Enum):
    KEPT_BY_DESIGN = "kept by design"
    KEPT_MASKED = "kept, personal data masked"
    KEPT_UNMASKED = "kept, personal data SHOWN (internal use): destroy with the site"
    DELETE_AFTER_USE = "delete after use"
    DESTROY_WITH_SITE = "destroy with the site"
    NONE_LEFT = "none left"
    DESTROYED = "destroyed"


class CopyKind(str, enum.Enum):
    BACKUP_CHAIN = "backup chain"
    NEW_SYSTEM = "new system"
    CONTROL_STORE = "control store"
    AUDIT_LEDGER = "audit ledger"
    REPORT = "report"
    DATA_DOCS = "Data Docs"
    OUTREACH_CSV = "outreach CSV"
    REPORT_COPY = "report copy"
    SCRATCH_RESTORE = "scratch restore"
    STAGING_TABLES = "load staging tables"
    TRANSFORM_TEMP = "transform key stores"


@dataclass(frozen=True)
class RemainingCopy:
    kind: CopyKind
    location: str  # a file or folder named from the inventory's folder, or a database URL without password
    holds: str  # which legacy data
    why: str  # why it is there, and what becomes of it
    disposition: Disposition
    exists: bool
    path: Path | None = None  # the local file or folder, when it is one
    run_id: str | None = None  # the run that made it

    @property
    def destroyable(self) -> bool:
        """destroy_scratch_copies removes it."""
        return self.exists and self.kind in (CopyKind.SCRATCH_RESTORE, CopyKind.STAGING_TABLES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "location": self.location,
            "holds": self.holds,
            "why": self.why,
            "disposition": self.disposition.value,
            "exists": self.exists,
            "path": str(self.path) if self.path else None,
            "run_id": self.run_id,
        }


# -- recording a scratch restore -------------------------------------------------------------------


def scratch_record(
    into_url: Secret, files_dir: Path | None, *, tables: Iterable[str], url_env: str | None = None
) -> dict[str, Any]:
    """What a restore is about to make, as its run records it (never the password).

    `url_env`: the environment variable that held a server scratch database's URL, so that
    the copy can be destroyed later with the same URL.
    """
    parsed = parse_url(into_url, what="scratch database")
    database = parsed.database
    sqlite = parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:")
    return {
        "database": redact_url(into_url.reveal()),
        "sqlite_path": str(Path(database).resolve()) if sqlite and database is not None else None,
        "url_env": None if sqlite else url_env,
        "tables": sorted(set(tables)),
        "files": str(Path(files_dir).resolve()) if files_dir is not None else None,
    }


# -- the register ----------------------------------------------------------------------------------


def _sqlite_path(url: Secret) -> Path | None:
    parsed = parse_url(url, what="database")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None


def _location(names: PathNames, path: Path | None, url: Secret | None = None) -> str:
    if path is not None:
        return names.name(path)
    return redact_url(url.reveal()) if url is not None else "—"


def _backup_chain(app: SiteApp, site_id: str, names: PathNames) -> list[RemainingCopy]:
    folder = app.inventory.backup_path / site_id
    personal_keys = "; for insured persons those keys are social insurance numbers"
    return [
        RemainingCopy(
            CopyKind.BACKUP_CHAIN,
            _location(names, folder),
            "every row and attachment file of the site, in every full backup and increment, age-encrypted to the "
            "custodians; the clear-text manifests list tables, row counts, hashes and each part's lowest and "
            "highest key" + personal_keys,
            "the site's record once the server is purged: kept by the custodians, who alone can decrypt it",
            Disposition.KEPT_BY_DESIGN,
            folder.is_dir(),
            folder,
        )
    ]


def _new_system(app: SiteApp, names: PathNames) -> list[RemainingCopy]:
    url = app.inventory.target_url()
    path = _sqlite_path(url)
    return [
        RemainingCopy(
            CopyKind.NEW_SYSTEM,
            _location(names, path, url),
            "the loaded rows (persons, units, dossiers, files, history), their lineage and crosswalk to legacy "
            "keys, the reject list (mig_rejects) and the flagged values (mig_flags) with their original values",
            "the new system of record: kept by design",
            Disposition.KEPT_BY_DESIGN,
            path.is_file() if path is not None else True,
            path,
        )
    ]


def _reconcile_keys(app: SiteApp, site_id: str) -> int:
    """Legacy keys that are personal identifiers (insured persons' numbers) in the reconcile state."""
    from reconcile.state import digests

    engine = app.control_store.engine
    if not sa.inspect(engine).has_table(digests.name):
        return 0
    query = (
        sa.select(digests.c.table_name, sa.func.count())
        .where(digests.c.site_id == site_id)
        .group_by(digests.c.table_name)
    )
    with engine.connect() as conn:
        return sum(int(n) for table, n in conn.execute(query) if key_kind(table))


def _control_store(app: SiteApp, site_id: str, names: PathNames) -> list[RemainingCopy]:
    url = app.inventory.control_store_url()
    path = _sqlite_path(url)
    keys = _reconcile_keys(app, site_id)
    return [
        RemainingCopy(
            CopyKind.CONTROL_STORE,
            _location(names, path, url),
            "every run's figures (examples with personal data masked) and the reconcile state: each legacy row's "
            f"key and digest ({keys} of those keys are personal: insured persons' social insurance numbers)",
            "the migration's record, read by reports and the purge gates: kept until the site is certified; "
            "its reconcile state can then be destroyed with the site",
            Disposition.KEPT_MASKED,
            path.is_file() if path is not None else True,
            path,
        )
    ]


def _ledger(app: SiteApp, site_id: str, names: PathNames) -> list[RemainingCopy]:
    path = app.ledger_path(site_id)
    return [
        RemainingCopy(
            CopyKind.AUDIT_LEDGER,
            _location(names, path),
            "signed events of every run with its figures (counts, fingerprints, paths); no row values",
            "the audit trail auditors verify: kept by design",
            Disposition.KEPT_BY_DESIGN,
            path.is_file(),
            path,
        )
    ]


# What each report file holds, by its stem; the assessment shows no row values.
REPORT_KINDS = {
    "assessment": (
        "assessment",
        "figures of the legacy database (tables, counts, objects, attachment findings), no row values",
        False,
    ),
    "validation-report": (
        "validation report",
        "figures, and examples of rejected and flagged rows by legacy key",
        True,
    ),
    "reconciliation": (
        "reconciliation report",
        "figures, dossiers by legacy id and number, rows the carry-over blocked by legacy key",
        True,
    ),
}


def _examples_shown(report_json: Path) -> bool | None:
    """True when a report shows personal data (show_personal_data, or written before examples were
    masked), False when masked, None when unreadable."""
    import json

    try:
        personal = (json.loads(report_json.read_text(encoding="utf-8")) or {}).get("personal_data")
    except (OSError, ValueError, AttributeError):
        return None
    return not isinstance(personal, dict) or personal.get("examples") != "masked"


def _reports(app: SiteApp, site_id: str, names: PathNames) -> list[RemainingCopy]:
    root = app.reports_dir(site_id)
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        holds, shown = [], False
        for stem, (label, what, has_examples) in REPORT_KINDS.items():
            if (folder / f"{stem}.json").exists():
                holds.append(f"{label}: {what}")
                shown = shown or (has_examples and _examples_shown(folder / f"{stem}.json") is not False)
        masking = (
            "personal data SHOWN (the inventory's show_personal_data, or written before examples were "
            "masked: rebuild it with `ts24-migrate report SITE`)"
            if shown
            else "personal data masked"
        )
        disposition = Disposition.KEPT_UNMASKED if shown else Disposition.KEPT_MASKED
        found.append(
            RemainingCopy(
                CopyKind.REPORT,
                _location(names, folder),
                "; ".join(holds or ["report files"]) + f"; {masking}",
                "the migration's evidence for auditors",
                disposition,
                True,
                folder,
                folder.name,
            )
        )
        docs = folder / DATA_DOCS_DIR
        if docs.is_dir():
            found.append(
                RemainingCopy(
                    CopyKind.DATA_DOCS,
                    _location(names, docs),
                    "Great Expectations results per table: counts and a few unexpected values, "
                    + ("possibly SHOWN" if shown else "masked where personal"),
                    "the validation's evidence for auditors",
                    disposition,
                    True,
                    docs,
                    folder.name,
                )
            )
        csv = folder / OUTREACH_CSV
        if csv.is_file():
            found.append(
                RemainingCopy(
                    CopyKind.OUTREACH_CSV,
                    _location(names, csv),
                    "contact details (unit, tax code, address, contact person, phone, e-mail) of units that must "
                    "re-register; readable by its owner only (0600)",
                    "for the office's outreach: delete it once the units are contacted",
                    Disposition.DELETE_AFTER_USE,
                    True,
                    csv,
                    folder.name,
                )
            )
    for name, what in (
        ("latest", "the site's latest page: each stage's latest run, its outcome and report link; no row values"),
        (
            "purge",
            "purge plans, approvals, journal and certificate: names of tables, objects and "
            "files with their fingerprints; sampled values only as keyed hashes",
        ),
    ):
        folder = app.inventory.site_dir(site_id) / name
        if folder.is_dir():
            found.append(
                RemainingCopy(
                    CopyKind.REPORT,
                    _location(names, folder),
                    what,
                    "the site's record: kept by design",
                    Disposition.KEPT_BY_DESIGN,
                    True,
                    folder,
                )
            )
    return found


def _report_copies(app: SiteApp, site_id: str, names: PathNames) -> list[RemainingCopy]:
    found = []
    for run in app.control_store.runs(site_id, REPORT_COPY_STAGE):
        folder = run.figures.get("folder")
        if not folder:
            continue
        path = Path(folder)
        found.append(
            RemainingCopy(
                CopyKind.REPORT_COPY,
                _location(names, path),
                f"a copy of validation report {run.figures.get('validate_run')} with its Data Docs, personal data "
                + ("SHOWN" if run.figures.get("personal_data") == "shown" else "masked"),
                "handed to an auditor: kept by whoever holds it (listed here while it is on this host)",
                Disposition.KEPT_MASKED if run.figures.get("personal_data") != "shown" else Disposition.KEPT_UNMASKED,
                path.exists(),
                path,
                run.run_id,
            )
        )
    return found


def _destroyed(app: SiteApp, site_id: str) -> dict[str, str]:
    """`<run id>:<part>` of each scratch copy destroyed -> the run that destroyed it."""
    gone: dict[str, str] = {}
    for run in app.control_store.runs(site_id, DESTROY_STAGE):
        for key in run.figures.get("destroyed") or []:
            gone[key] = run.run_id
    return gone


def _scratch_url(record: dict[str, Any]) -> Secret | None:
    """A server scratch database's URL, from the variable the restore read it from, if it still names it."""
    name = record.get("url_env")
    value = (os.environ.get(name) or "").strip() if name else ""
    if not value or redact_url(value) != record.get("database"):
        return None
    return Secret(value)


def _server_scratch_tables(record: dict[str, Any]) -> list[str] | None:
    """Restored tables still in a server scratch database; None when it cannot be looked at from here."""
    url = _scratch_url(record)
    if url is None:
        return None
    engine = store_engine(url)
    try:
        present = set(sa.inspect(engine).get_table_names())
    except sa.exc.DBAPIError:
        return None
    finally:
        engine.dispose()
    return sorted(present & set(record.get("tables") or []))


@dataclass(frozen=True)
class _ScratchPart:
    run_id: str
    stage: str
    record: dict[str, Any]
    part: str  # "database" | "files"

    @property
    def key(self) -> str:
        return f"{self.run_id}:{self.part}"

    @property
    def path(self) -> Path | None:
        """The SQLite file or the folder; None for a server database."""
        value = self.record.get("sqlite_path") if self.part == "database" else self.record.get("files")
        return Path(value) if value else None

    @property
    def local_paths(self) -> list[Path]:
        """The file or folder, and what a killed restore left under its temporary name."""
        if self.path is None:
            return []
        partial = self.path.with_name(PARTIAL.format(name=self.path.name))
        if self.part == "database":
            return [self.path, *(Path(f"{p}{s}") for p in (self.path, partial) for s in SQLITE_COMPANIONS), partial]
        return [self.path, partial]

    def exists(self, destroyed: bool) -> bool:
        if self.path is not None:
            return any(p.exists() or p.is_symlink() for p in self.local_paths)
        tables = _server_scratch_tables(self.record)
        return bool(tables) if tables is not None else not destroyed  # out of sight: assume it is there


def _scratch_parts(app: SiteApp, site_id: str) -> list[_ScratchPart]:
    parts = []
    for run in app.control_store.runs(site_id):
        record = run.figures.get(SCRATCH) if run.stage in RESTORE_STAGES else None
        if record:
            parts.append(_ScratchPart(run.run_id, run.stage, record, "database"))
            if record.get("files"):
                parts.append(_ScratchPart(run.run_id, run.stage, record, "files"))
    return parts


def _scratch(app: SiteApp, site_id: str, names: PathNames) -> list[RemainingCopy]:
    found = []
    gone = _destroyed(app, site_id)
    for part in _scratch_parts(app, site_id):
        exists = part.exists(part.key in gone)
        if part.part == "database":
            holds = f"every table of the backup, restored by a {part.stage} run"
            location = _location(names, part.path) if part.path else part.record.get("database") or "—"
        else:
            holds = f"every attachment file of the backup, restored by a {part.stage} run"
            location = _location(names, part.path)
        why = "made to prove the backup restores; nothing else needs it"
        if not exists and part.key in gone:
            why += f"; destroyed by run {gone[part.key]}"
        elif exists and part.path is None and _scratch_url(part.record) is None:
            why += f"; to destroy it from here, set {part.record.get('url_env') or 'its URL variable'} to its URL"
        disposition = (
            Disposition.DESTROYED
            if not exists and part.key in gone
            else (Disposition.DESTROY_WITH_SITE if exists else Disposition.NONE_LEFT)
        )
        found.append(
            RemainingCopy(CopyKind.SCRATCH_RESTORE, location, holds, why, disposition, exists, part.path, part.run_id)
        )
    return found


@dataclass(frozen=True)
class StagingTable:
    schema: str | None
    name: str
    temporary: bool  # held by a live session (PostgreSQL): it goes when that session ends


def leftover_staging_tables(target: Engine) -> list[StagingTable]:
    """Staging and plan tables of the load still in the target (none after every load session ended)."""
    inspector = sa.inspect(target)
    found = []
    schemas = inspector.get_schema_names() if target.dialect.name == "postgresql" else [None]
    for schema in schemas:
        if schema in ("information_schema",):
            continue
        for name in inspector.get_table_names(schema=schema):
            if name.startswith(STAGING_PREFIXES):
                found.append(StagingTable(schema, name, temporary=False))
    if target.dialect.name == "postgresql":
        pg_class = sa.table("pg_class", sa.column("relname"), sa.column("relpersistence"), sa.column("relkind"))
        query = sa.select(pg_class.c.relname).where(
            pg_class.c.relpersistence == "t",
            pg_class.c.relkind == "r",
            sa.or_(*(pg_class.c.relname.startswith(p, autoescape=True) for p in STAGING_PREFIXES)),
        )
        with target.connect() as conn:
            found += [StagingTable(None, name, temporary=True) for name in conn.execute(query).scalars()]
    return found


def _catalog_reader(app: SiteApp, url: Secret, dry_run: bool) -> tuple[Engine, bool, str]:
    """An engine to read the target's catalog; in a dry run (a purge plan) without changing anything, so a
    SQLite file is read as immutable (even a read-only SQLite reader writes its marks into the -shm file).
    Returns (engine, dispose it, a note on what was not read)."""
    path = _sqlite_path(url)
    if path is None or not dry_run:
        return app.target_engine(), False, ""
    if not path.exists():
        raise UnreachableError(f"the target database {path} does not exist")
    note = (
        " (read from the database file: what its write-ahead log holds was not read)"
        if Path(f"{path}-wal").exists()
        else ""
    )
    parsed = parse_url(url, what="target").set(database=f"file:{path.resolve()}?immutable=1", query={"uri": "true"})
    return sa.create_engine(parsed), True, note


def _staging(app: SiteApp, names: PathNames, dry_run: bool) -> list[RemainingCopy]:
    url = app.inventory.target_url()
    try:
        reader, own, note = _catalog_reader(app, url, dry_run)
        try:
            leftovers = leftover_staging_tables(reader)
        finally:
            if own:
                reader.dispose()
    except UnreachableError as exc:
        return [
            RemainingCopy(
                CopyKind.STAGING_TABLES,
                _location(names, _sqlite_path(url), url),
                f"not checked now: {exc}",
                "staging tables are TEMPORARY: dropped when the load's "
                "session ends; check again where the target is reachable",
                Disposition.NONE_LEFT,
                False,
            )
        ]
    if not leftovers:
        return [
            RemainingCopy(
                CopyKind.STAGING_TABLES,
                _location(names, _sqlite_path(url), url),
                f"no staging table (checked now in the target's catalog{note})",
                "each chunk's staging and plan tables are TEMPORARY: dropped when the load's session ends",
                Disposition.NONE_LEFT,
                False,
            )
        ]
    return [
        RemainingCopy(
            CopyKind.STAGING_TABLES,
            f"{_location(names, _sqlite_path(url), url)}: " + ".".join(filter(None, (table.schema, table.name))),
            "transformed rows of one load chunk",
            "held by a live load session (goes when it ends)" if table.temporary else "left by a load: destroy it",
            Disposition.DESTROY_WITH_SITE,
            True,
        )
        for table in leftovers
    ]


def _key_store_leftovers() -> list[Path]:
    """Folders of the transform's key stores left by a run killed between making and unlinking (a moment)."""
    pattern = os.path.join(glob.escape(tempfile.gettempdir()), KEY_STORE_PREFIX + "*")
    return sorted(Path(p) for p in glob.glob(pattern) if os.stat(p).st_uid == os.geteuid())


def _transform_temp(names: PathNames) -> list[RemainingCopy]:
    leftovers = _key_store_leftovers()
    if not leftovers:
        return [
            RemainingCopy(
                CopyKind.TRANSFORM_TEMP,
                tempfile.gettempdir(),
                "nothing on disk: the transform's key stores (insurance and ID numbers it has seen) are SQLite "
                "files made 0600 in a 0700 folder and unlinked as soon as they are open",
                "temporary: gone when the load ends, even a killed one",
                Disposition.NONE_LEFT,
                False,
            )
        ]
    return [
        RemainingCopy(
            CopyKind.TRANSFORM_TEMP,
            str(path),
            "a key store folder left by a killed load",
            "temporary: destroy it",
            Disposition.DESTROY_WITH_SITE,
            True,
            path,
        )
        for path in leftovers
    ]


def remaining_copies(app: SiteApp, site_id: str, *, dry_run: bool = False) -> list[RemainingCopy]:
    """Every place the tool knows holds legacy data of `site_id` besides the legacy server, and why.

    `app` is a ts24_migrate.runs.app.App (inventory, control store, target). `dry_run` (a purge plan): nothing
    is opened for writing, not even the SQLite target's side files.
    """
    app.site(site_id)
    names = PathNames.for_inventory(app.inventory)
    return [
        *_backup_chain(app, site_id, names),
        *_new_system(app, names),
        *_control_store(app, site_id, names),
        *_ledger(app, site_id, names),
        *_reports(app, site_id, names),
        *_report_copies(app, site_id, names),
        *_scratch(app, site_id, names),
        *_staging(app, names, dry_run),
        *_transform_temp(names),
    ]


# -- destroying the scratch copies -----------------------------------------------------------------


def _remove_folder(path: Path) -> None:
    if path.is_symlink():
        path.unlink()  # never follow a link out of the folder the restore made
    elif path.exists():
        shutil.rmtree(path)


def _drop_tables(url: Secret, tables: Sequence[str]) -> None:
    engine = store_engine(url)
    try:
        present = set(sa.inspect(engine).get_table_names())
        metadata = sa.MetaData()
        with engine.begin() as conn:
            for name in sorted(set(tables) & present):
                sa.Table(name, metadata).drop(conn)
    finally:
        engine.dispose()


def _drop_staging(app: SiteApp) -> list[str]:
    dropped = []
    target = app.target_engine()
    metadata = sa.MetaData()
    with target.begin() as conn:
        for table in leftover_staging_tables(target):
            if table.temporary:
                continue  # another session's own: it goes when that session ends
            sa.Table(table.name, metadata, schema=table.schema).drop(conn)
            dropped.append(".".join(filter(None, (table.schema, table.name))))
    return dropped


def destroy_scratch_copies(app: SiteApp, site_id: str, *, parent_run_id: str | None = None) -> dict[str, Any]:
    """Remove the site's scratch restores (SQLite files with their -wal/-shm, restored folders, the tables of
    a server scratch database whose URL is at hand), staging tables left in the target and leftover key-store
    folders; record it as a `destroy-copies` run (control store and ledger). Returns what was destroyed and
    what could not be."""
    from ts24_migrate.core.stage_runs import stage_run

    destroyed, kept = [], []
    with stage_run(app.control_store, app.ledger(site_id), site_id, DESTROY_STAGE, parent_run_id=parent_run_id) as run:
        gone = _destroyed(app, site_id)
        for part in _scratch_parts(app, site_id):
            if not part.exists(part.key in gone):
                continue
            if part.path is not None and part.part == "database":
                for path in part.local_paths:
                    path.unlink(missing_ok=True)
            elif part.path is not None:
                for path in part.local_paths:
                    _remove_folder(path)
            else:
                url = _scratch_url(part.record)
                if url is None:
                    kept.append(
                        f"{part.record.get('database')}: set {part.record.get('url_env')} to its URL to "
                        f"drop the {len(part.record.get('tables') or [])} restored tables"
                    )
                    continue
                _drop_tables(url, part.record.get("tables") or [])
            destroyed.append(part.key)
        staging = _drop_staging(app)
        leftovers = _key_store_leftovers()
        for folder in leftovers:
            _remove_folder(folder)
        run.figures.update(
            {
                "destroyed": destroyed,
                "staging_tables_dropped": staging,
                "key_store_folders_removed": len(leftovers),
                "not_destroyed": kept,
            }
        )
    return {"run_id": run.run_id, "site_id": site_id, **run.figures}
