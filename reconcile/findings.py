"""What a reconciliation finds: dossiers in flight, overdue, received after cut-over, drift,
likely duplicates on the new portal, and the units that must re-register.

Every function reads the legacy database through a Connection it is given
(read-only) and the target through another; large tables are read in
key-ordered chunks with narrow column lists, so memory follows the chunk and
the number of findings, not the size of the site.

Legacy names appear here because this is where legacy rows are read and
judged; what the functions return speaks English.

Example::

    flights = in_flight_dossiers(legacy_conn, as_of=dt.datetime(2025, 8, 7))
    flights.by_status        # {'submitted': 3, 'received': 5, 'processing': 12, 'supplement_requested': 4}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from extract.discovery import TableInfo, discover_tables
from extract.extraction import as_stored
from extract.reader import iter_table_rows
from load.bookkeeping import crosswalk, rejects
from load.target_schema import dossiers, re_registrations, units
from transform.dates import parse_period
from transform.normalize import as_int
from transform.tables.common import as_date, as_datetime
from transform.tables.dossiers import received_after_cutover
from ts24_migrate.core.errors import ConfigError
from ts24_migrate.core.legacy.schema import DOSSIER_STATUS_NAMES, IN_FLIGHT_STATUSES
from ts24_migrate.core.legacy.text_repair import AMBIGUOUS, SUSPECT, repair_text

from .state import KEYS_PER_QUERY, Key, ReconcileState, key_text

MUST_REREGISTER_MODES = (1, 2)  # DM_DONVI.PHUONG_THUC_GD: old portal, network without signature
LISTED = 500  # dossiers listed by name in a report section; the JSON gives the full count


def legacy_tables(conn: Connection) -> dict[str, TableInfo]:
    return {t.name.upper(): t for t in discover_tables(conn)}


def _narrow(table: TableInfo, names: list[str]) -> TableInfo:
    """`table` restricted to `names` (the key first), for reads that skip notes and blobs."""
    metadata = sa.MetaData()
    present = [n for n in names if n in table.column_names]
    columns = [sa.Column(n, table.table.c[n].type, primary_key=n in table.primary_key) for n in present]
    narrow = sa.Table(table.table.name, metadata, *columns, schema=table.table.schema)
    infos = tuple(sorted((c for c in table.columns if c.name in present), key=lambda c: present.index(c.name)))
    # Read as stored: a value its column should not hold (dirty data) is judged, not a crash.
    return as_stored(TableInfo(table.name, table.schema, infos, table.primary_key, narrow))


def _dossier_table(tables: dict[str, TableInfo]) -> TableInfo:
    table = tables.get("HO_SO")
    if table is None:
        raise ConfigError("the legacy database has no HO_SO table: is it a TS24 database?")
    return table


def _in(column: sa.ColumnElement[Any], values: list[Any]) -> Iterator[sa.ColumnElement[bool]]:
    for i in range(0, len(values), KEYS_PER_QUERY):
        yield column.in_(values[i : i + KEYS_PER_QUERY])


# -- in flight ----------------------------------------------------------------------------------


@dataclass
class Dossier:
    legacy_id: Any
    number: str | None
    unit: str | None
    procedure: str | None
    period: str | None  # yyyy-mm
    status: str
    received_at: dt.datetime | None
    due_date: dt.date | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "legacy_id": str(self.legacy_id),
            "dossier_no": self.number,
            "unit_code": self.unit,
            "procedure_code": self.procedure,
            "declaration_period": self.period,
            "status": self.status,
            "received_at": self.received_at.isoformat(sep=" ") if self.received_at else None,
            "due_date": self.due_date.isoformat() if self.due_date else None,
        }


@dataclass
class InFlight:
    as_of: dt.datetime
    dossiers: list[Dossier] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.dossiers)

    @property
    def by_status(self) -> dict[str, int]:
        counts = {DOSSIER_STATUS_NAMES[s]: 0 for s in IN_FLIGHT_STATUSES}
        for d in self.dossiers:
            counts[d.status] += 1
        return counts

    @property
    def overdue(self) -> list[Dossier]:
        today = self.as_of.date()
        return [d for d in self.dossiers if d.due_date is not None and d.due_date < today]


_DOSSIER_COLUMNS = [
    "ID_HO_SO",
    "SO_HO_SO",
    "MA_DV",
    "MA_THU_TUC",
    "KY_KE_KHAI",
    "TRANG_THAI",
    "NGAY_TIEP_NHAN",
    "NGAY_HEN_TRA",
]


def _code(value: Any, *, lower: bool = False) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    return text.lower() if lower else text.upper()


def _dossier(
    values: dict[str, Any], status: int, reference: dt.date, periods: dict[str, str | None] | None = None
) -> Dossier:
    """`periods`: declaration periods parsed so far (a site's dossiers share a few dozen)."""
    period_text = values.get("KY_KE_KHAI")
    period = None
    if isinstance(period_text, str):
        if periods is None or period_text not in periods:
            period = parse_period(period_text, reference_date=reference)[0]
            if periods is not None:
                periods[period_text] = period
        else:
            period = periods[period_text]
    number = values.get("SO_HO_SO")
    return Dossier(
        values["ID_HO_SO"],
        number.strip() if isinstance(number, str) else None,
        _code(values.get("MA_DV")),
        _code(values.get("MA_THU_TUC"), lower=True),
        period,
        DOSSIER_STATUS_NAMES[status],
        as_datetime(values.get("NGAY_TIEP_NHAN")),
        as_date(values.get("NGAY_HEN_TRA")),
    )


def in_flight_dossiers(
    conn: Connection, *, as_of: dt.datetime, tables: dict[str, TableInfo] | None = None, chunk_rows: int = 50_000
) -> InFlight:
    """Legacy dossiers in statuses 0-3 (submitted, received, processing, returned for supplement)."""
    table = _narrow(_dossier_table(tables or legacy_tables(conn)), _DOSSIER_COLUMNS)
    status_column = table.table.c["TRANG_THAI"]
    result = InFlight(as_of)
    names = table.column_names
    reference = as_of.date()
    periods: dict[str, str | None] = {}
    for rows in iter_table_rows(conn, table, chunk_rows=chunk_rows, where=status_column.in_(list(IN_FLIGHT_STATUSES))):
        for row in rows:
            values = dict(zip(names, row))
            status = as_int(values["TRANG_THAI"])
            if status in IN_FLIGHT_STATUSES:
                result.dossiers.append(_dossier(values, status, reference, periods))
    return result


def any_in_flight(conn: Connection, tables: dict[str, TableInfo] | None = None) -> bool:
    """Whether any legacy dossier is in statuses 0-3 (the database stops at the first it finds)."""
    table = _dossier_table(tables or legacy_tables(conn)).table
    query = sa.select(sa.literal(1)).where(table.c["TRANG_THAI"].in_(list(IN_FLIGHT_STATUSES))).limit(1)
    return conn.execute(query).first() is not None


def legacy_clock(conn: Connection, tables: dict[str, TableInfo] | None = None) -> dt.datetime | None:
    """The legacy's own present: its latest recorded change (dossiers, history, access log)."""
    tables = tables or legacy_tables(conn)
    latest = None
    for name, column in (("HO_SO", "NGAY_CAP_NHAT"), ("HO_SO_LICH_SU", "THOI_GIAN"), ("HT_NHAT_KY", "THOI_GIAN")):
        table = tables.get(name)
        if table is None or column not in table.column_names:
            continue
        moment = _latest_moment(conn, as_stored(table).table.c[column])
        if moment is not None:
            latest = moment if latest is None or moment > latest else latest
    return latest


def _latest_moment(conn: Connection, column: sa.Column[Any]) -> dt.datetime | None:
    """The column's latest real moment. MAX() reads the table without sorting it; values of
    another type (dirty rows) sort apart on SQLite, so when the highest value is not a moment,
    the top values are read in order and the first moment among them is taken."""
    top = conn.execute(sa.select(sa.func.max(column))).scalar()
    if top is None:
        return None
    moment = as_datetime(top) if not isinstance(top, dt.datetime) else top
    if moment is not None:
        return moment
    for value in conn.execute(sa.select(column).order_by(column.desc()).limit(20)).scalars():
        moment = as_datetime(value) if not isinstance(value, dt.datetime) else value
        if moment is not None:
            return moment
    return None


# -- received after cut-over ---------------------------------------------------------------------


def received_after_cutover_dossiers(
    conn: Connection,
    *,
    cutover: dt.date,
    as_of: dt.datetime,
    tables: dict[str, TableInfo] | None = None,
    chunk_rows: int = 50_000,
) -> list[Dossier]:
    """Dossiers TS24 received after the cut-over: it must not receive any (violations)."""
    table = _narrow(_dossier_table(tables or legacy_tables(conn)), _DOSSIER_COLUMNS)
    start = dt.datetime.combine(cutover, dt.time.min)
    found = []
    names = table.column_names
    for rows in iter_table_rows(conn, table, chunk_rows=chunk_rows, where=table.table.c["NGAY_TIEP_NHAN"] > start):
        for row in rows:
            values = dict(zip(names, row))
            status = as_int(values["TRANG_THAI"])
            if (
                received_after_cutover(as_datetime(values["NGAY_TIEP_NHAN"]), cutover)
                and status in DOSSIER_STATUS_NAMES
            ):
                found.append(_dossier(values, status, as_of.date()))
    return found


# -- drift ---------------------------------------------------------------------------------------


@dataclass
class DossierAccount:
    """Legacy dossiers against the new system: carried over (current), rejected, or drifting.

    `scope` "all": every legacy dossier was compared; "watched": only the dossiers changed since
    the last run (a delta run; unchanged dossiers, whose legacy side did not move, are compared
    by the sweep that the drained verdict requires).
    """

    scope: str = "all"
    dossiers: int = 0
    current: int = 0  # loaded, same status as legacy, loaded from the legacy row as it is now
    rejected: int = 0  # not loaded, with a reason (mig_rejects)
    drift: list[dict[str, Any]] = field(default_factory=list)

    @property
    def all_accounted(self) -> bool:
        return self.scope == "all" and not self.drift and self.current + self.rejected == self.dossiers


_ACCOUNT_COLUMNS = ["ID_HO_SO", "SO_HO_SO", "TRANG_THAI"]


def dossier_account(
    legacy: Connection,
    target: Connection,
    state: ReconcileState,
    *,
    site_id: str,
    tables: dict[str, TableInfo] | None = None,
    only: list[Any] | None = None,
    chunk_rows: int = 5_000,
) -> DossierAccount:
    """Compare legacy dossiers' status (and row digest) with what the new system holds.

    Every dossier, or only the ID_HO_SO values in `only`. Drift kinds: `status` (the new
    system shows another status), `stale` (loaded from an older version of the legacy row),
    `missing` (neither loaded nor rejected).
    """
    table = _narrow(_dossier_table(tables or legacy_tables(legacy)), _ACCOUNT_COLUMNS)
    account = DossierAccount(scope="all" if only is None else "watched")
    if only is None:
        for rows in iter_table_rows(legacy, table, chunk_rows=chunk_rows):
            _account_rows(account, rows, target, state, site_id)
        return account
    key = table.table.c["ID_HO_SO"]
    for where in _in(key, sorted(set(only), key=repr)):
        for rows in iter_table_rows(legacy, table, chunk_rows=chunk_rows, where=where):
            _account_rows(account, rows, target, state, site_id)
    return account


def _account_rows(
    account: DossierAccount, rows: list[tuple[Any, ...]], target: Connection, state: ReconcileState, site_id: str
) -> None:
    keys = ["" if r[0] is None else str(r[0]) for r in rows]
    loaded: dict[str, tuple[str, str]] = {}
    rejected: dict[str, str] = {}
    for where in _in(crosswalk.c.legacy_key, keys):
        # The crosswalk row's target table is checked here, not in SQL: given `target_table = ?`,
        # SQLite walks the (target_table, target_key) index over every dossier the site loaded
        # instead of looking the keys up by the primary key, a scan per key list.
        query = (
            sa.select(crosswalk.c.legacy_key, dossiers.c.status, crosswalk.c.legacy_row_hash, crosswalk.c.target_table)
            .select_from(
                crosswalk.join(
                    dossiers, dossiers.c.dossier_id == sa.cast(crosswalk.c.target_key, dossiers.c.dossier_id.type)
                )
            )
            .where(crosswalk.c.site_id == site_id, crosswalk.c.legacy_table == "HO_SO", where)
        )
        loaded.update({k: (s, h) for k, s, h, table in target.execute(query) if table == dossiers.name})
    for where in _in(rejects.c.legacy_key, keys):
        rejected.update(
            {
                k: r
                for k, r in target.execute(
                    sa.select(rejects.c.legacy_key, rejects.c.reason_code).where(
                        rejects.c.site_id == site_id, rejects.c.legacy_table == "HO_SO", where
                    )
                )
            }
        )
    index_keys = [key_text([r[0]]) for r in rows]
    digests = state.digests_of(site_id, "HO_SO", index_keys)
    for row, key, index_key in zip(rows, keys, index_keys):
        account.dossiers += 1
        status_code = as_int(row[2])
        status = DOSSIER_STATUS_NAMES.get(status_code) if status_code is not None else None
        entry = {"legacy_id": key, "dossier_no": row[1], "legacy_status": status}
        if key in loaded:
            target_status, loaded_hash = loaded[key]
            current = digests.get(index_key)
            if target_status != status:
                account.drift.append({**entry, "kind": "status", "target_status": target_status})
            elif current is not None and loaded_hash is not None and loaded_hash != current[0]:
                account.drift.append({**entry, "kind": "stale", "target_status": target_status})
            else:
                account.current += 1
        elif key in rejected:
            account.rejected += 1
        else:
            account.drift.append({**entry, "kind": "missing", "target_status": None})


# -- likely duplicates ---------------------------------------------------------------------------


def likely_duplicates(target: Connection, flights: InFlight, *, rows_per_fetch: int = 10_000) -> list[dict[str, Any]]:
    """In-flight legacy dossiers also filed on the new portal: same unit, procedure and period.

    The portal's dossiers of the units concerned are read in one pass (the new system's
    dossiers table has no index on unit_code: one scan, not one per batch of units).
    """
    wanted: dict[tuple[str, str, str], list[Dossier]] = {}  # (unit, procedure, period) -> dossiers
    for d in flights.dossiers:
        if d.unit and d.procedure and d.period:
            wanted.setdefault((d.unit, d.procedure, d.period), []).append(d)
    units_wanted = sorted({u for u, _, _ in wanted})
    if not units_wanted:
        return []
    query = sa.select(
        dossiers.c.dossier_no,
        dossiers.c.unit_code,
        dossiers.c.procedure_code,
        dossiers.c.declaration_period,
        dossiers.c.status,
        dossiers.c.submitted_at,
    ).where(dossiers.c.source == "portal")
    if len(units_wanted) <= KEYS_PER_QUERY:
        query = query.where(dossiers.c.unit_code.in_(units_wanted))
    pairs = []
    result = target.execution_options(stream_results=True, yield_per=rows_per_fetch).execute(query)
    for number, unit, procedure, period, status, submitted in result:
        key = ((unit or "").strip().upper(), (procedure or "").strip().lower(), period)
        for legacy in wanted.get(key, []):
            pairs.append(
                {
                    "legacy_id": str(legacy.legacy_id),
                    "legacy_dossier_no": legacy.number,
                    "legacy_status": legacy.status,
                    "portal_dossier_no": number,
                    "portal_status": status,
                    "unit_code": key[0],
                    "procedure_code": key[1],
                    "declaration_period": key[2],
                    "portal_submitted_at": submitted.isoformat(sep=" ") if submitted else None,
                }
            )
    return sorted(pairs, key=lambda p: (p["legacy_id"], p["portal_dossier_no"]))


# -- re-registration -----------------------------------------------------------------------------

# text_check: the text fields left as they were because they could not be repaired with certainty
CONTACT_FIELDS = (
    "unit_code",
    "name",
    "tax_code",
    "address",
    "contact_name",
    "phone",
    "email",
    "transaction_mode",
    "text_check",
)
_CONTACT_TEXT = ("name", "address", "contact_name")
_DOUBT_FLAGS = {AMBIGUOUS: "TEXT_ENCODING_AMBIGUOUS", SUSPECT: "TEXT_ENCODING_SUSPECT"}


@dataclass
class Reregistration:
    must: int = 0
    registered: list[dict[str, Any]] = field(default_factory=list)  # unit_code, filed_on, transaction_mode
    missing: list[dict[str, Any]] = field(default_factory=list)  # CONTACT_FIELDS, for outreach

    def summary(self) -> dict[str, Any]:
        return {"must_reregister": self.must, "registered": len(self.registered), "not_registered": len(self.missing)}


_UNIT_COLUMNS = [
    "MA_DV",
    "TEN_DV",
    "MA_SO_THUE",
    "DIA_CHI",
    "NGUOI_LIEN_HE",
    "DIEN_THOAI",
    "EMAIL",
    "PHUONG_THUC_GD",
    "TRANG_THAI",
]
_MODES = {1: "portal", 2: "network_unsigned"}


def reregistration(
    legacy: Connection, target: Connection, *, tables: dict[str, TableInfo] | None = None, chunk_rows: int = 5_000
) -> Reregistration:
    """Active units in transaction mode 1 or 2 must file 01/ĐK-GĐ on the new portal: who has, who has not.

    Contact details come from the new system's copy of the unit (text repaired) when it was loaded,
    else from the legacy row as it is.
    """
    tables = tables or legacy_tables(legacy)
    source = tables.get("DM_DONVI")
    if source is None:
        raise ConfigError("the legacy database has no DM_DONVI table: is it a TS24 database?")
    table = _narrow(source, _UNIT_COLUMNS)
    result = Reregistration()
    seen: set[str] = set()
    names = table.column_names
    due: dict[str, dict[str, Any]] = {}  # every unit of the site that must re-register
    for rows in iter_table_rows(legacy, table, chunk_rows=chunk_rows):
        for row in rows:
            values = dict(zip(names, row))
            code = values["MA_DV"].strip().upper() if isinstance(values["MA_DV"], str) else None
            mode = as_int(values.get("PHUONG_THUC_GD"))
            if not code or code in seen or mode not in MUST_REREGISTER_MODES or as_int(values.get("TRANG_THAI")) != 1:
                continue
            seen.add(code)
            due[code] = {
                "unit_code": code,
                "name": values.get("TEN_DV"),
                "tax_code": values.get("MA_SO_THUE"),
                "address": values.get("DIA_CHI"),
                "contact_name": values.get("NGUOI_LIEN_HE"),
                "phone": values.get("DIEN_THOAI"),
                "email": values.get("EMAIL"),
                "transaction_mode": _MODES[mode],
            }
    result.must = len(due)
    codes = sorted(due)
    filed = _first_filings(target, codes)
    loaded: dict[str, dict[str, Any]] = {}
    for where in _in(units.c.unit_code, codes):
        for row in target.execute(
            sa.select(
                units.c.unit_code,
                units.c.name,
                units.c.tax_code,
                units.c.address,
                units.c.contact_name,
                units.c.phone,
                units.c.email,
            ).where(where)
        ):
            loaded[row.unit_code] = dict(row._mapping)
    for code in codes:
        if code in filed:
            filed_on, filed_mode = filed[code]
            result.registered.append(
                {
                    "unit_code": code,
                    "filed_on": filed_on.isoformat() if filed_on else None,
                    "transaction_mode": filed_mode,
                }
            )
        else:
            contact = {**due[code], **{k: v for k, v in loaded.get(code, {}).items() if v is not None}}
            result.missing.append(_readable({k: contact.get(k) for k in CONTACT_FIELDS}))
    result.registered.sort(key=lambda r: r["unit_code"])
    result.missing.sort(key=lambda r: r["unit_code"])
    return result


def _first_filings(target: Connection, codes: list[str], *, rows_per_fetch: int = 10_000) -> dict[str, tuple[Any, str]]:
    """unit code -> (filed on, transaction mode) of each unit's first 01/ĐK-GĐ filing.

    The portal's re_registrations table has no index on unit_code: an IN list scans it, so more
    codes than one list holds are matched in one streamed scan, not one scan per list."""
    filed: dict[str, tuple[Any, str]] = {}
    if not codes:
        return filed
    r = re_registrations
    query = sa.select(r.c.unit_code, r.c.filed_on, r.c.transaction_mode).order_by(r.c.filed_on)
    wanted = set(codes)
    if len(codes) <= KEYS_PER_QUERY:
        query = query.where(r.c.unit_code.in_(codes))
    for code, filed_on, filed_mode in target.execution_options(stream_results=True, yield_per=rows_per_fetch).execute(
        query
    ):
        if code in wanted:
            filed.setdefault(code, (filed_on, filed_mode))
    return filed


def _readable(contact: dict[str, Any]) -> dict[str, Any]:
    """The contact's names and address as the transform repairs them (a unit that was not loaded
    comes straight from the legacy row, maybe in TCVN3 or VNI); what cannot be repaired with
    certainty stays as it is and is named in text_check, never passed on garbled and unmarked."""
    doubts = []
    for name in _CONTACT_TEXT:
        value = contact.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        repaired, encoding = repair_text(value.strip())
        if encoding in _DOUBT_FLAGS:
            doubts.append(f"{name}: {_DOUBT_FLAGS[encoding]}")
        else:
            contact[name] = repaired
    contact["text_check"] = "; ".join(doubts) or None
    return contact


# -- no unprocessed delta ------------------------------------------------------------------------


def unread_changes(
    conn: Connection, tables: dict[str, TableInfo], watermarks: dict[str, Any], max_keys: dict[str, Key | None]
) -> list[str]:
    """Tables where the legacy holds a change or key beyond what the chain read (empty: none)."""
    found = []
    for _upper, table in sorted(tables.items()):
        table = as_stored(table)
        info_name = table.name
        watermark = watermarks.get(info_name)
        column = table.watermark_column
        if column is not None and watermark is not None:
            values = conn.execute(
                sa.select(table.table.c[column]).where(table.table.c[column] > watermark).limit(100)
            ).scalars()
            if any(isinstance(v, dt.datetime) and v > watermark for v in values):
                found.append(f"{info_name}: rows changed after {watermark}")
                continue
        if table.primary_key and len(table.primary_key) == 1 and info_name in max_keys:
            key = max_keys[info_name]  # None: the table was empty when read
            column_key = table.table.c[table.primary_key[0]]
            query = sa.select(column_key).limit(1)
            if key is not None:
                query = query.where(column_key > key[0])
            if conn.execute(query).first() is not None:
                found.append(f"{info_name}: rows beyond the highest key the chain holds")
    return found
