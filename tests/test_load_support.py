"""What the load tests share: targets, hand-made transformed rows, demo sites, target snapshots.

A snapshot is the whole target (business and bookkeeping tables) as sorted
tuples, without what legitimately differs between two loads of the same data:
run ids and bookkeeping timestamps, and surrogate key numbers (a killed
PostgreSQL transaction still consumes sequence values). A surrogate key is
replaced by the legacy key the crosswalk maps to it; a crosswalk row hash by
whether it equals the hash the database recomputes over the live row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from load import bookkeeping as bk
from load import target_schema as ts
from load.merge import ChunkOutcome, merge_chunk, record_rejects
from load.row_hash import register_sqlite_functions, row_md5
from load.schema_version import prepare_target
from load.staging import to_stage_arrow
from load.target_map import TARGET_SPECS, target_spec
from load.transactions import write_transaction
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.secrets import Secret
from ts24_migrate.demo import generate_site

CUTOVER = dt.date(2025, 7, 1)
BEFORE = dt.datetime(2025, 5, 2, 9, 30)
AFTER = dt.datetime(2025, 7, 9, 14, 0)

# Per bookkeeping table: columns that differ between two loads of the same data.
_VOLATILE = {
    "mig_crosswalk": {"run_id", "loaded_at"},
    "mig_rejects": {"run_id", "rejected_at"},
    "mig_conflicts": {"run_id", "detected_at"},
    "mig_load_ledger": {"run_id", "done_at"},
    "mig_load_tables": {"run_id", "completed_at"},
    "mig_schema_version": {"applied_at"},
    "mig_flags": {"run_id", "flagged_at"},
}


def open_target(url: str) -> sa.Engine:
    """A target engine as the CLI builds it, with the schema in place."""
    engine = store_engine(Secret(url))
    register_sqlite_functions(engine)
    prepare_target(engine)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target_url(request, sqlite_url) -> str:
    return sqlite_url("target") if request.param == "sqlite" else request.getfixturevalue("pg_database")()


@pytest.fixture
def target(target_url):
    """An engine on a fresh target (SQLite, then PostgreSQL) with the new system's schema."""
    engine = open_target(target_url)
    yield engine
    engine.dispose()


# -- hand-made transformed rows ----------------------------------------------------------------
def unit_row(code: str, **values: Any) -> dict[str, Any]:
    row = {
        "unit_code": code,
        "name": f"Công ty {code}",
        "tax_code": None,
        "address": "Hà Nội",
        "office_code": "0101",
        "contact_name": None,
        "phone": None,
        "email": None,
        "transaction_mode": "portal",
        "ivan_code": None,
        "cert_serial": None,
        "cert_valid_from": None,
        "cert_valid_to": None,
        "registered_on": dt.date(2019, 2, 1),
        "active": True,
        "dq_flags": None,
        "updated_at": BEFORE,
        "legacy_key": code,
    }
    row.update(values)
    return row


def dossier_row(legacy_id: int, **values: Any) -> dict[str, Any]:
    row = {
        "dossier_no": f"HS-{legacy_id:05d}",
        "unit_code": "DV001",
        "procedure_code": "600",
        "declaration_period": "2025-05",
        "submitted_at": BEFORE,
        "received_at": None,
        "due_date": None,
        "returned_at": None,
        "status": "received",
        "office_code": "0101",
        "officer": None,
        "result_no": None,
        "notes": None,
        "dq_flags": None,
        "updated_at": BEFORE,
        "legacy_key": str(legacy_id),
    }
    row.update(values)
    return row


def file_row(
    legacy_id: int, legacy_dossier_id: Any, content: bytes | None = b"<xml/>", **values: Any
) -> dict[str, Any]:
    row = {
        "form_code": "TK1-TS",
        "file_name": f"tệp {legacy_id}.xml",
        "file_type": "xml",
        "content": content,
        "size_bytes": len(content or b""),
        "md5": hashlib.md5(content or b"").hexdigest(),
        "sha256": hashlib.sha256(content or b"").hexdigest(),
        "dq_flags": None,
        "legacy_key": str(legacy_id),
        "legacy_dossier_id": legacy_dossier_id,
    }
    row.update(values)
    return row


def frame(rows: list[dict[str, Any]], table: str = "units") -> pd.DataFrame:
    """Rows as the transform hands them over, with a legacy_row_hash per row."""
    spec = target_spec(table)
    columns = [c.name for c in spec.row_columns()] + ["dq_flags", "legacy_key"]
    columns += [spec.parent.legacy_column] if spec.parent else []
    data = pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r]))).astype(object)
    data["legacy_row_hash"] = [hashlib.sha256(str(k).encode()).hexdigest() for k in data["legacy_key"]]
    return data


def merge(
    engine: sa.Engine,
    table: str,
    rows: list[dict[str, Any]],
    *,
    site_id: str = "s1",
    legacy_table: str = "LEGACY",
    cutover: dt.date = CUTOVER,
    may_be_loaded: bool = True,
) -> tuple[ChunkOutcome, list[dict]]:
    """Stage and merge one chunk in its own transaction, recording the rows that do not fit."""
    spec = target_spec(table)
    staged, unstorable = to_stage_arrow(frame(rows, table), spec)
    now = dt.datetime(2025, 8, 1)
    run_id = str(uuid.uuid4())
    with write_transaction(engine) as conn:
        outcome = merge_chunk(
            conn,
            spec,
            staged,
            legacy_table=legacy_table,
            site_id=site_id,
            run_id=run_id,
            cutover=cutover,
            now=now,
            may_be_loaded=may_be_loaded,
        )
        record_rejects(conn, unstorable, legacy_table=legacy_table, site_id=site_id, run_id=run_id, now=now)
    return outcome, unstorable


def rows_of(engine: sa.Engine, table: sa.Table, *where) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).all()


# -- demo sites ---------------------------------------------------------------------------------
def demo_site(folder: Path, legacy_url: str, target: sa.Engine | None, *, scale: float = 0.05):
    """A demo TS24 site (legacy database and attachments) and its new-system side in `target`."""
    legacy = sa.create_engine(legacy_url)
    truth = generate_site(legacy, folder / "files", target=target, seed=42, scale=scale, cutover=CUTOVER)
    return legacy, folder / "files", truth


def demo_inventory(
    folder: Path, target_url: str, *, scale: float = 0.05, site_id: str = "demo", ready_to_load: bool = True
):
    """A site folder as an operator has it: sites.yaml, secrets, signing and custodian keys, legacy
    database, attachments; assessed, backed up and its backup verified (what a load needs first),
    unless `ready_to_load` is False.

    The new system's side is planted into the target. Returns (inventory path, truth).
    """
    from test_stages_support import READY_TO_LOAD, through_inventory

    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key

    folder.mkdir(parents=True, exist_ok=True)
    target = store_engine(Secret(target_url))
    legacy_url = f"sqlite:///{folder / 'legacy.sqlite'}"
    legacy, _, truth = demo_site(folder, legacy_url, target, scale=scale)
    legacy.dispose()
    target.dispose()
    secrets = folder / "secrets"
    secrets.mkdir()
    for name, value in (("legacy.url", legacy_url), ("target.url", target_url)):
        (secrets / name).write_text(value, encoding="utf-8")
        (secrets / name).chmod(0o600)
    generate_signing_key(folder / "keys" / "signing.key")
    recipient = generate_custodian_identity(folder / "keys" / "custodian.age-identity")
    inventory = folder / "sites.yaml"
    inventory.write_text(
        "version: 1\nwork_dir: work\nsigning_key: keys/signing.key\ntarget: file:secrets/target.url\n"
        f'sites:\n  - id: {site_id}\n    office: "01"\n    legacy: file:secrets/legacy.url\n'
        f"    attachments: files\n    cutover: {CUTOVER.isoformat()}\n    backup_recipients: [{recipient}]\n",
        encoding="utf-8",
    )
    if ready_to_load:
        through_inventory(inventory, site_id, *READY_TO_LOAD)
    return inventory, truth


# -- snapshots ----------------------------------------------------------------------------------
def _surrogate_names(conn: sa.Connection) -> dict[tuple[str, str], tuple]:
    """(target_table, key as text) -> the legacy identity the crosswalk gives it."""
    return {
        (r.target_table, r.target_key): ("ts24", r.site_id, r.legacy_table, r.legacy_key)
        for r in conn.execute(sa.select(bk.crosswalk))
    }


def _name_key(names: dict, table: str, value: Any) -> Any:
    return names.get((table, str(value)), ("id", value)) if value is not None else None


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Business and bookkeeping tables, comparable between two loads of the same data."""
    register_sqlite_functions(engine)
    result: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        names = _surrogate_names(conn)
        for name in ts.BUSINESS_TABLES:
            table = ts.metadata.tables[name]
            spec = TARGET_SPECS.get(name)
            rows = []
            for row in conn.execute(sa.select(table)):
                values = row._asdict()
                if spec is not None and spec.surrogate:
                    values[spec.key.name] = _name_key(names, name, values[spec.key.name])
                if "dossier_id" in values and name != "dossiers":
                    values["dossier_id"] = _name_key(names, "dossiers", values["dossier_id"])
                if name == "re_registrations":
                    values["registration_id"] = None
                rows.append(tuple(sorted(values.items())))
            result[name] = sorted(rows, key=repr)
        live = _live_row_hashes(conn)
        for name in bk.BOOKKEEPING_TABLES:
            table = bk.metadata.tables[name]
            rows = []
            for row in conn.execute(sa.select(table)):
                values = {k: v for k, v in row._asdict().items() if k not in _VOLATILE.get(name, ())}
                if name in ("mig_crosswalk", "mig_conflicts") and values.get("target_key"):
                    key = values["target_key"]
                    values["target_key"] = _name_key(names, values["target_table"], key)
                    if name == "mig_crosswalk":
                        values["row_md5"] = values["row_md5"] == live.get((values["target_table"], key))
                rows.append(tuple(sorted(values.items())))
            result[name] = sorted(rows, key=repr)
    return result


def _live_row_hashes(conn: sa.Connection) -> dict[tuple[str, str], str]:
    hashes = {}
    for name, spec in TARGET_SPECS.items():
        query = sa.select(sa.cast(spec.key, sa.String), row_md5(conn.dialect.name, spec.hashed_columns()))
        hashes.update({(name, key): md5 for key, md5 in conn.execute(query)})
    return hashes


def raw_tables(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every business and bookkeeping table as stored (ids and hashes included), minus run ids and times."""
    result = {}
    with engine.connect() as conn:
        for metadata in (ts.metadata, bk.metadata):
            for name, table in metadata.tables.items():
                volatile = _VOLATILE.get(name, set())
                columns = [c for c in table.columns if c.name not in volatile]
                result[name] = sorted(conn.execute(sa.select(*columns)).all(), key=repr)
    return result


# -- the snapshot itself must see differences, or the tests built on it prove nothing -----------
def test_snapshot_ignores_run_ids_but_sees_a_changed_row(sqlite_url):
    engine = open_target(sqlite_url("t"))
    merge(engine, "units", [unit_row("DV001"), unit_row("DV002")])
    before = snapshot(engine)
    merge(engine, "units", [unit_row("DV001"), unit_row("DV002")])  # a re-run: new run id, same rows
    assert snapshot(engine) == before
    with engine.begin() as conn:
        conn.execute(ts.units.update().where(ts.units.c.unit_code == "DV002").values(phone="0912"))
    changed = snapshot(engine)
    assert changed["units"] != before["units"]
    # ... and the crosswalk's hash of the edited row no longer matches the live row.
    assert changed["mig_crosswalk"] != before["mig_crosswalk"]
