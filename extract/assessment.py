"""Assessment: what a legacy site holds, before anything is moved.

Discovers every table (mapped or not), counts rows, lists keys and column
types, flags tables without a primary key, counts per column the text values that
look like legacy encodings (TCVN3, all-caps TCVN3 included, VNI, decomposed NFD)
and those the load will flag because they cannot be repaired with certainty
(ambiguous between TCVN3 and VNI, or suspect: garbled beyond any decoding), and
counts in-flight dossiers by status and dossiers received after the cut-over
date. Lists every view, trigger, procedure, function and sequence with the
fingerprint of its definition (extract.objects), and, given the attachment
folder, compares it with the rows that refer to it: missing files, wrong
checksums, files no row references, symbolic links
(extract.attachments.check_references, the very check the backup runs). Only reads.

Example::

    with legacy_engine.connect() as conn:
        report = assess_site(conn, site_id="hn-01", cutover=date(2025, 7, 1))
    report.to_dict()["tables"]["HO_SO"]["rows"]
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ts24_migrate.core.labels import attachment_findings
from ts24_migrate.core.legacy.schema import DOSSIER_STATUS_NAMES, IN_FLIGHT_STATUSES
from ts24_migrate.core.legacy.text_repair import repair_text
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.server_identity import ServerIdentity, probe_server_identity

from .attachments import check_references
from .discovery import TableInfo, discover_tables
from .objects import discover_objects, object_counts

LEGACY_ENCODINGS = ("tcvn3", "vni", "nfd")
UNCERTAIN_TEXT = ("ambiguous", "suspect")  # loaded unchanged with a flag (ts24_migrate.core.legacy.text_repair)
SUSPECTED_TEXT = LEGACY_ENCODINGS + UNCERTAIN_TEXT
_TEXT_TYPES = (sa.String, sa.Text, sa.Unicode, sa.UnicodeText)


@dataclass
class TableAssessment:
    name: str
    role: str  # mapped | system | unmapped
    rows: int
    primary_key: list[str]
    columns: list[dict[str, Any]]
    # column -> encoding (SUSPECTED_TEXT) -> count of values
    legacy_text: dict[str, dict[str, int]] = field(default_factory=dict)
    # Columns of a mapped table that the TS24 schema does not have: backed up, never loaded.
    columns_not_loaded: list[str] = field(default_factory=list)

    @property
    def has_primary_key(self) -> bool:
        return bool(self.primary_key)


class AssessmentSummary(StageResult):
    """A site's assessment in figures: what the assess run records and every output shows."""

    tables: int
    rows: int
    unmapped_tables: list[str]
    tables_without_primary_key: list[str]
    columns_not_loaded: dict[str, list[str]]
    legacy_text_values: dict[str, int]  # per legacy encoding (TCVN3, VNI, NFD)
    uncertain_text_values: dict[str, int]  # to check by hand
    in_flight_dossiers: int
    received_after_cutover: int
    objects: dict[str, int]  # views, triggers, procedures, sequences: a count per kind
    attachment_files: int | None  # None without an attachment folder
    attachment_findings: dict[str, int] | None


@dataclass
class SiteAssessment:
    site_id: str
    cutover: dt.date
    assessed_at: str
    dialect: str
    tables: list[TableAssessment]
    dossiers_by_status: dict[str, int]
    in_flight_dossiers: int
    received_after_cutover: int
    received_after_cutover_ids: list[str]
    server: ServerIdentity  # who answered: compared by every later stage (ts24_migrate/runs/server_check.py)
    # views, triggers, procedures, functions, sequences: SchemaObject.listing() each (no definition text)
    objects: list[dict[str, Any]] = field(default_factory=list)
    objects_note: str | None = None
    # the attachment folder against the rows (ReferenceCheck.to_json()); None without a folder
    attachments: dict[str, Any] | None = None

    @property
    def tables_without_primary_key(self) -> list[str]:
        return [t.name for t in self.tables if not t.has_primary_key]

    @property
    def unmapped_tables(self) -> list[str]:
        return [t.name for t in self.tables if t.role == "unmapped"]

    @property
    def columns_not_loaded(self) -> dict[str, list[str]]:
        return {t.name: t.columns_not_loaded for t in self.tables if t.columns_not_loaded}

    def legacy_text_totals(self, kinds: tuple[str, ...] = LEGACY_ENCODINGS) -> dict[str, int]:
        totals = Counter({kind: 0 for kind in kinds})
        for table in self.tables:
            for counts in table.legacy_text.values():
                totals.update({kind: n for kind, n in counts.items() if kind in kinds})
        return dict(totals)

    def suspected_text_by_column(self) -> list[dict[str, Any]]:
        """One entry per column holding suspected legacy text: table, column and a count per kind."""
        return [
            {"table": t.name, "column": column, **{kind: counts.get(kind, 0) for kind in SUSPECTED_TEXT}}
            for t in self.tables
            for column, counts in sorted(t.legacy_text.items())
        ]

    def summary(self) -> AssessmentSummary:
        return AssessmentSummary(
            tables=len(self.tables),
            rows=sum(t.rows for t in self.tables),
            unmapped_tables=self.unmapped_tables,
            tables_without_primary_key=self.tables_without_primary_key,
            columns_not_loaded=self.columns_not_loaded,
            legacy_text_values=self.legacy_text_totals(),
            uncertain_text_values=self.legacy_text_totals(UNCERTAIN_TEXT),
            in_flight_dossiers=self.in_flight_dossiers,
            received_after_cutover=self.received_after_cutover,
            objects=object_counts(self.objects),
            attachment_files=(self.attachments or {}).get("files_in_folder"),
            attachment_findings=(
                {key: count for key, _label, count in attachment_findings(self.attachments)}
                if self.attachments is not None
                else None
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "cutover": self.cutover.isoformat(),
            "assessed_at": self.assessed_at,
            "dialect": self.dialect,
            "server": self.server.to_dict(),
            "summary": self.summary().to_dict(),
            "objects": self.objects,
            "objects_note": self.objects_note,
            "attachments": self.attachments,
            "tables": {t.name: {k: v for k, v in asdict(t).items() if k != "name"} for t in self.tables},
            "suspected_text_by_column": self.suspected_text_by_column(),
            "dossiers_by_status": self.dossiers_by_status,
            "received_after_cutover_ids": self.received_after_cutover_ids,
        }


def _count_rows(conn: Connection, table: TableInfo) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table.table)).scalar_one())


def _text_columns(table: TableInfo) -> list[sa.Column[Any]]:
    return [c for c in table.table.columns if isinstance(c.type, _TEXT_TYPES)]


def _legacy_text_counts(conn: Connection, table: TableInfo, chunk_rows: int) -> dict[str, dict[str, int]]:
    columns = _text_columns(table)
    if not columns:
        return {}
    counts: dict[str, Counter[str]] = {c.name: Counter() for c in columns}
    result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(sa.select(*columns))
    for partition in result.partitions(chunk_rows):
        for row in partition:
            for column, value in zip(columns, row):
                if isinstance(value, str) and value:
                    encoding = repair_text(value)[1]
                    if encoding in SUSPECTED_TEXT:
                        counts[column.name][encoding] += 1
    return {name: dict(c) for name, c in counts.items() if c}


def _dossier_figures(
    conn: Connection, tables: dict[str, TableInfo], cutover: dt.date
) -> tuple[dict[str, int], int, list[str]]:
    dossiers = tables.get("HO_SO")
    if dossiers is None:
        return {}, 0, []
    t = dossiers.table
    by_status = {
        DOSSIER_STATUS_NAMES.get(status, f"unknown({status})"): int(n)
        for status, n in conn.execute(
            sa.select(t.c.TRANG_THAI, sa.func.count()).group_by(t.c.TRANG_THAI).order_by(t.c.TRANG_THAI)
        )
    }
    after = dt.datetime.combine(cutover + dt.timedelta(days=1), dt.time())
    ids = [
        str(i)
        for i in conn.execute(
            sa.select(t.c.ID_HO_SO).where(t.c.NGAY_TIEP_NHAN >= after).order_by(t.c.ID_HO_SO)
        ).scalars()
    ]
    in_flight_names = {DOSSIER_STATUS_NAMES[s] for s in IN_FLIGHT_STATUSES}
    in_flight = sum(n for name, n in by_status.items() if name in in_flight_names)
    return by_status, in_flight, ids


def assess_site(
    conn: Connection,
    *,
    site_id: str,
    cutover: dt.date,
    chunk_rows: int = 20_000,
    progress: Callable[[str, int, int], None] | None = None,
    server: ServerIdentity | None = None,
    attachments_dir: Path | None = None,
) -> SiteAssessment:
    """Assess the legacy database behind `conn` (read only), and its attachment folder if given;
    `server`: its identity, if already asked."""
    server = server or probe_server_identity(conn)
    tables = discover_tables(conn)
    assessed: list[TableAssessment] = []
    for index, table in enumerate(tables):
        if progress:
            progress(table.name, index, len(tables))
        assessed.append(
            TableAssessment(
                name=table.name,
                role=table.role,
                rows=_count_rows(conn, table),
                primary_key=list(table.primary_key),
                columns=[{"name": c.name, "type": c.type_name, "nullable": c.nullable} for c in table.columns],
                legacy_text=_legacy_text_counts(conn, table, chunk_rows),
                columns_not_loaded=list(table.columns_not_in_schema),
            )
        )
    by_name = {t.name.upper(): t for t in tables}
    by_status, in_flight, after_ids = _dossier_figures(conn, by_name, cutover)
    found = discover_objects(conn)
    references = None
    if attachments_dir is not None:
        if progress:
            progress("attachment folder", len(tables), len(tables))
        references = check_references(conn, tables, Path(attachments_dir), chunk_rows=chunk_rows).to_json()
    return SiteAssessment(
        site_id=site_id,
        cutover=cutover,
        assessed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        dialect=conn.dialect.name,
        tables=assessed,
        dossiers_by_status=by_status,
        in_flight_dossiers=in_flight,
        received_after_cutover=len(after_ids),
        received_after_cutover_ids=after_ids,
        server=server,
        objects=found.listing(),
        objects_note=found.note,
        attachments=references,
    )
