"""A small, valid target database as the load would leave it, for the validation tests.

`build_target` writes business rows (load.target_schema) and, for each, the
bookkeeping the load keeps: a crosswalk row with its lineage, the row hash the database
computes (load.row_hash over load.target_map's hashed columns). It is
what parity and the target suites are tested against until (and besides) the
end-to-end run on the demo site.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from load import target_schema as ts
from load.bookkeeping import create_bookkeeping_tables, crosswalk
from load.row_hash import register_sqlite_functions, row_md5
from load.target_map import target_spec

STATUSES = ts.DOSSIER_STATUSES
MODES = ("portal", "network_unsigned", "ivan")
NOW = dt.datetime(2025, 6, 30, 12, 0, 0)


@dataclass(frozen=True)
class BuiltSite:
    site_id: str
    offices: list[str]
    unit_ids: list[int]
    person_ids: list[int]
    dossier_ids: list[int]
    file_ids: list[int]
    history_ids: list[int]


def _tax_code(rng: random.Random) -> str:
    weights = (31, 29, 23, 19, 17, 13, 7, 5, 3)
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        remainder = sum(d * w for d, w in zip(digits, weights)) % 11
        check = 10 - remainder
        if remainder and check < 10:
            return "".join(map(str, digits)) + str(check)


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> list:
    """Insert rows, return their keys in order (surrogate keys read back by natural key)."""
    if not rows:
        return []
    conn.execute(table.insert(), rows)
    spec = target_spec(table.name)
    if spec.key.name in rows[0]:
        return [r[spec.key.name] for r in rows]
    natural = table.c[spec.natural_key]
    values = [r[spec.natural_key] for r in rows]
    found = dict(conn.execute(sa.select(natural, spec.key).where(natural.in_(values))).tuples().all())
    return [found[v] for v in values]


def _record_lineage(
    conn: sa.Connection, table: sa.Table, site_id: str, legacy_table: str, legacy_keys: dict, run_id: str
) -> None:
    """What the load records: a crosswalk row with its lineage (row hash computed by the database)."""
    spec = target_spec(table.name)
    key, digest = spec.key, row_md5(conn.dialect.name, spec.hashed_columns())
    hashes = dict(conn.execute(sa.select(key, digest).where(key.in_(list(legacy_keys)))).tuples().all())
    conn.execute(
        crosswalk.insert(),
        [
            {
                "target_table": table.name,
                "target_key": str(k),
                "site_id": site_id,
                "legacy_table": legacy_table,
                "legacy_key": legacy_keys[k],
                "run_id": run_id,
                "legacy_row_hash": "0" * 64,
                "row_md5": hashes[k],
                "loaded_at": NOW,
            }
            for k in legacy_keys
        ],
    )


def build_target(
    engine: sa.Engine,
    site_id: str = "hn-01",
    *,
    units: int = 20,
    persons: int = 40,
    dossiers: int = 60,
    province: str = "01",
    seed: int = 1,
    key_base: int = 0,
) -> BuiltSite:
    """Create the target tables (if missing) and load one site's worth of valid rows."""
    rng = random.Random(seed)
    register_sqlite_functions(engine)
    ts.create_business_tables(engine)
    create_bookkeeping_tables(engine)
    run_id = str(uuid.UUID(int=seed))
    district = f"{province}{seed % 90 + 10:02d}"
    with engine.begin() as conn:
        office_rows = [
            {"office_code": province, "name": f"BHXH tỉnh {province}", "level": "province", "province_code": province},
            {"office_code": district, "name": f"BHXH huyện {district}", "level": "district", "province_code": province},
        ]
        existing = set(conn.execute(sa.select(ts.offices.c.office_code)).scalars())
        new_offices = [r for r in office_rows if r["office_code"] not in existing]
        _insert(conn, ts.offices, new_offices)
        offices = [r["office_code"] for r in new_offices]
        _record_lineage(conn, ts.offices, site_id, "DM_COQUAN_BHXH", {c: c for c in offices}, run_id)

        unit_rows = []
        for i in range(units):
            mode = MODES[i % 3]
            unit_rows.append(
                {
                    "unit_code": f"TS{province}{key_base + i:06d}",
                    "name": f"Công ty số {i}",
                    "tax_code": _tax_code(rng) + ("-001" if i % 7 == 0 else ""),
                    "address": "Hà Nội",
                    "office_code": district,
                    "contact_name": "Nguyễn Văn A",
                    "phone": "0900000000",
                    "email": f"u{i}@example.vn",
                    "transaction_mode": mode,
                    "ivan_code": "00040" if mode == "ivan" else None,
                    "cert_serial": None,
                    "cert_valid_from": None,
                    "cert_valid_to": None,
                    "registered_on": dt.date(2015, 1, 1) + dt.timedelta(days=i),
                    "active": i % 5 != 0,
                    "dq_flags": None,
                    "source": "ts24",
                    "updated_at": NOW,
                }
            )
        unit_ids = _insert(conn, ts.units, unit_rows)
        _record_lineage(
            conn, ts.units, site_id, "DM_DONVI", {k: r["unit_code"] for k, r in zip(unit_ids, unit_rows)}, run_id
        )

        person_rows = [
            {
                "social_insurance_no": f"{int(province):02d}{key_base + i:08d}",
                "full_name": f"Trần Thị {i}",
                "birth_date": dt.date(1960 + i % 40, 1 + i % 12, 1),
                "birth_date_precision": "day",
                "sex": "MF"[i % 2],
                "citizen_id": f"{i:012d}" if i % 3 else f"{i:09d}",
                "unit_code": unit_rows[i % units]["unit_code"],
                "dq_flags": None,
                "source": "ts24",
                "updated_at": NOW,
            }
            for i in range(persons)
        ]
        person_ids = _insert(conn, ts.insured_persons, person_rows)
        _record_lineage(
            conn,
            ts.insured_persons,
            site_id,
            "NGUOI_LAO_DONG",
            {k: r["social_insurance_no"] for k, r in zip(person_ids, person_rows)},
            run_id,
        )

        dossier_rows = []
        for i in range(dossiers):
            submitted = dt.datetime(2024, 1, 1) + dt.timedelta(hours=7 * i)
            dossier_rows.append(
                {
                    "dossier_no": f"{province}-{key_base + i:08d}",
                    "unit_code": unit_rows[i % units]["unit_code"],
                    "procedure_code": ("600", "600a", "600b", "630a")[i % 4],
                    "declaration_period": "2024-01",
                    "submitted_at": submitted,
                    "received_at": submitted + dt.timedelta(hours=1),
                    "due_date": (submitted + dt.timedelta(days=5)).date(),
                    "returned_at": None,
                    "status": STATUSES[i % len(STATUSES)],
                    "office_code": district,
                    "officer": "cb01",
                    "result_no": None,
                    "notes": None,
                    "dq_flags": None,
                    "source": "ts24",
                    "updated_at": NOW,
                }
            )
        dossier_ids = _insert(conn, ts.dossiers, dossier_rows)
        _record_lineage(
            conn, ts.dossiers, site_id, "HO_SO", {k: str(key_base + i + 1) for i, k in enumerate(dossier_ids)}, run_id
        )

        first_file = key_base * 10 + 1
        file_rows = [
            {
                "file_id": first_file + i,
                "dossier_id": d,
                "form_code": "TK1-TS",
                "file_name": f"tk{i}.xml",
                "file_type": "xml",
                "content": b"<x/>",
                "size_bytes": 4,
                "md5": "0" * 32,
                "sha256": "0" * 64,
                "dq_flags": None,
                "source": "ts24",
            }
            for i, d in enumerate(dossier_ids)
        ]
        file_ids = _insert(conn, ts.dossier_files, file_rows)
        _record_lineage(conn, ts.dossier_files, site_id, "HO_SO_TEP", {k: f"F{k}" for k in file_ids}, run_id)

        history_rows = [
            {
                "history_id": first_file + i,
                "dossier_id": d,
                "occurred_at": NOW,
                "status_from": "submitted",
                "status_to": "received",
                "actor": "cb01",
                "note": None,
                "source": "ts24",
            }
            for i, d in enumerate(dossier_ids)
        ]
        history_ids = _insert(conn, ts.dossier_history, history_rows)
        _record_lineage(conn, ts.dossier_history, site_id, "HO_SO_LICH_SU", {k: f"H{k}" for k in history_ids}, run_id)
    return BuiltSite(site_id, offices, unit_ids, person_ids, dossier_ids, file_ids, history_ids)


def test_built_target_records_one_lineage_row_per_loaded_row(sqlite_url):
    engine = sa.create_engine(sqlite_url("target"))
    built = build_target(engine, units=5, persons=7, dossiers=9)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(sa.select(crosswalk.c.target_table, sa.func.count()).group_by(crosswalk.c.target_table))
            .tuples()
            .all()
        )
    assert counts == {
        "offices": 2,
        "units": 5,
        "insured_persons": 7,
        "dossiers": 9,
        "dossier_files": 9,
        "dossier_history": 9,
    }
    assert len(built.unit_ids) == 5
