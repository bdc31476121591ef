"""The demo TS24 site generator: determinism, SQLite = MariaDB, an exact truth file,
every defect planted, attachments, refusal to overwrite, the CLI, and advance_site."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.vn import mst

from extract.discovery import discover_tables
from extract.reader import iter_table_rows
from load.target_schema import dossiers, re_registrations, units
from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.main import main
from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.legacy.encodings import VIETNAMESE_LETTERS, decode_tcvn3_mojibake, decode_vni_mojibake
from ts24_migrate.core.legacy.schema import (
    DM_DONVI,
    HO_SO,
    HO_SO_LICH_SU,
    HO_SO_TEP,
    IN_FLIGHT_STATUSES,
    KNOWN_TABLES,
    NGUOI_LAO_DONG,
)
from ts24_migrate.core.rows.fingerprint import TableFingerprint
from ts24_migrate.demo import DemoTruth, generate_site
from ts24_migrate.demo.advance import AdvanceTruth, advance_site
from ts24_migrate.demo.dirty_data import ALL_KINDS, ENCODING_KINDS
from ts24_migrate.runs.app import App

SCALE = 0.05
CUTOVER = dt.date(2025, 7, 1)


# --- helpers -----------------------------------------------------------------------------


def fingerprints(engine: sa.Engine) -> dict[str, str]:
    """Every table's content fingerprint, read back through discovery and the shared reader."""
    found = {}
    with engine.connect() as conn:
        for table in discover_tables(conn):
            fingerprint = TableFingerprint()
            for chunk in iter_table_rows(conn, table, chunk_rows=97):
                fingerprint.add_rows(chunk)
            found[table.name] = fingerprint.hexdigest()
    return found


def folder_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_site(tmp_path: Path, name: str, *, seed: int = 42, target: bool = True, scale: float = SCALE):
    legacy = sa.create_engine(f"sqlite:///{tmp_path / (name + '.legacy.sqlite')}")
    new_system = sa.create_engine(f"sqlite:///{tmp_path / (name + '.target.sqlite')}") if target else None
    truth = generate_site(
        legacy, tmp_path / f"{name}-files", target=new_system, seed=seed, scale=scale, cutover=CUTOVER
    )
    return legacy, new_system, truth


def rows_of(engine: sa.Engine, table: sa.Table) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table)))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One generated site (with its new system) for the read-only checks."""
    tmp_path = tmp_path_factory.mktemp("demo-site")
    legacy, target, truth = make_site(tmp_path, "site")
    yield legacy, target, truth, tmp_path / "site-files"
    legacy.dispose()
    target.dispose()


# --- determinism and backends ---------------------------------------------------------------


def test_same_seed_gives_identical_site_and_another_seed_does_not(tmp_path):
    first, first_target, first_truth = make_site(tmp_path, "a", seed=7)
    again, again_target, again_truth = make_site(tmp_path, "b", seed=7)
    other, other_target, other_truth = make_site(tmp_path, "c", seed=8)

    assert fingerprints(first) == fingerprints(again)
    assert fingerprints(first_target) == fingerprints(again_target)
    assert first_truth.to_dict() == again_truth.to_dict()
    assert folder_digest(tmp_path / "a-files") == folder_digest(tmp_path / "b-files")

    differing = {name for name, fp in fingerprints(other).items() if fingerprints(first)[name] != fp}
    # Only the fixed catalogue tables may coincide across seeds.
    assert differing >= {
        "DM_DONVI",
        "NGUOI_LAO_DONG",
        "HO_SO",
        "HO_SO_TEP",
        "HO_SO_LICH_SU",
        "HT_NHAT_KY",
        "IMPORT_TAM",
    }
    assert other_truth.defects != first_truth.defects
    assert folder_digest(tmp_path / "c-files") != folder_digest(tmp_path / "a-files")


@pytest.mark.mariadb
def test_mariadb_over_odbc_gets_the_same_content_as_sqlite(tmp_path, mariadb_database):
    sqlite_legacy, _, sqlite_truth = make_site(tmp_path, "lite", target=False)
    maria = sa.create_engine(mariadb_database())
    try:
        maria_truth = generate_site(maria, tmp_path / "maria-files", seed=42, scale=SCALE, cutover=CUTOVER)
        # The same content; MariaDB also has what SQLite cannot hold: a procedure and a sequence.
        assert {**maria_truth.to_dict(), "objects": None} == {**sqlite_truth.to_dict(), "objects": None}
        assert [(o["kind"], o["name"]) for o in sqlite_truth.objects] == [
            ("view", "V_HO_SO_DANG_XU_LY"),
            ("trigger", "TRG_HT_NHAT_KY_CHI_GHI_THEM"),
        ]
        assert [(o["kind"], o["name"]) for o in maria_truth.objects] == [
            ("view", "V_HO_SO_DANG_XU_LY"),
            ("trigger", "TRG_HT_NHAT_KY_CHI_GHI_THEM"),
            ("procedure", "SP_DEM_HO_SO_DANG_XU_LY"),
            ("sequence", "SEQ_SO_HO_SO"),
        ]
        maria_fps, sqlite_fps = fingerprints(maria), fingerprints(sqlite_legacy)
        assert set(maria_fps) == set(sqlite_truth.tables) and maria_fps == sqlite_fps
        assert folder_digest(tmp_path / "maria-files") == folder_digest(tmp_path / "lite-files")

        # The world moves on identically on both backends, too.
        maria_step = advance_site(maria, None, tmp_path / "maria-files", days=5, seed=3)
        sqlite_step = advance_site(sqlite_legacy, None, tmp_path / "lite-files", days=5, seed=3)
        assert maria_step.to_dict() == sqlite_step.to_dict()
        assert fingerprints(maria) == fingerprints(sqlite_legacy)
    finally:
        maria.dispose()


# --- the truth file is exact -------------------------------------------------------------------


def test_truth_table_counts_and_roles_match_the_database(site):
    legacy, _, truth, _ = site
    with legacy.connect() as conn:
        tables = {t.name: t for t in discover_tables(conn)}
        assert set(tables) == set(truth.tables)
        for name, info in truth.tables.items():
            assert conn.execute(sa.select(sa.func.count()).select_from(tables[name].table)).scalar() == info["rows"]
            assert list(tables[name].primary_key) == info["primary_key"]
            assert tables[name].role == info["role"]
    assert set(KNOWN_TABLES) < set(truth.tables)
    unmapped = {n: i for n, i in truth.tables.items() if i["role"] == "unmapped"}
    assert len(unmapped) >= 2
    assert any(not i["primary_key"] for i in unmapped.values())
    assert any(len(i["primary_key"]) > 1 for i in unmapped.values())


def test_truth_dossier_figures_match_the_database(site):
    legacy, _, truth, _ = site
    dossiers_rows = rows_of(legacy, HO_SO)
    assert {str(s): n for s, n in sorted(Counter(r.TRANG_THAI for r in dossiers_rows).items())} == {
        k: v for k, v in truth.dossiers_by_status.items() if v
    }
    assert set(truth.dossiers_by_status) == {str(s) for s in range(7)}
    in_flight = [r for r in dossiers_rows if r.TRANG_THAI in IN_FLIGHT_STATUSES]
    assert len(in_flight) == truth.in_flight_dossiers
    today = truth.world_now.date()
    overdue = [r for r in in_flight if r.NGAY_HEN_TRA is not None and r.NGAY_HEN_TRA < today]
    assert len(overdue) == truth.overdue_in_flight
    assert 0 < len(overdue) < len([r for r in in_flight if r.NGAY_HEN_TRA is not None])  # past and future

    # Received after the cut-over date: exactly the planted ones, whichever way "after" is read.
    cutover_midnight = dt.datetime.combine(truth.cutover, dt.time())
    late = {
        str(r.ID_HO_SO) for r in dossiers_rows if r.NGAY_TIEP_NHAN is not None and r.NGAY_TIEP_NHAN >= cutover_midnight
    }
    strictly_late = {
        str(r.ID_HO_SO)
        for r in dossiers_rows
        if r.NGAY_TIEP_NHAN is not None and r.NGAY_TIEP_NHAN.date() > truth.cutover
    }
    assert late == strictly_late == set(truth.received_after_cutover) != set()


def test_truth_attachment_figures_match_the_database(site):
    legacy, _, truth, files = site
    file_rows = rows_of(legacy, HO_SO_TEP)
    assert sum(r.DUONG_DAN is not None for r in file_rows) == truth.attachments["on_disk"]
    assert sum(r.NOI_DUNG is not None for r in file_rows) == truth.attachments["in_db"]
    assert all((r.NOI_DUNG is None) != (r.DUONG_DAN is None) for r in file_rows)
    on_disk = folder_digest(files)
    assert len(on_disk) == truth.attachments["files_written"]
    assert sum((files / p).stat().st_size for p in on_disk) == truth.attachments["bytes_on_disk"]


def test_truth_new_system_figures_match_the_target(site):
    legacy, target, truth, _ = site
    assert truth.has_target
    unit_rows = rows_of(legacy, DM_DONVI)
    must = {r.MA_DV.strip().upper() for r in unit_rows if r.PHUONG_THUC_GD in (1, 2) and r.TRANG_THAI == 1}
    assert sorted(must) == truth.must_reregister

    registrations = rows_of(target, re_registrations)
    assert all(r.tax_code is None or mst.is_valid(r.tax_code) for r in registrations)  # filed clean
    assert all(r.form == "01/ĐK-GĐ" and r.filed_on < truth.world_now.date() for r in registrations)
    registered = [r.unit_code for r in registrations]
    assert sorted(registered) == truth.reregistered and len(set(registered)) == len(registered)
    assert set(registered) < must and truth.reregistered

    portal = rows_of(target, dossiers)
    assert all(r.source == "portal" and r.submitted_at >= dt.datetime.combine(truth.cutover, dt.time()) for r in portal)
    assert len(portal) == truth.portal_dossiers
    portal_keys = {(r.unit_code, r.procedure_code, r.declaration_period) for r in portal}
    likely = {
        str(r.ID_HO_SO)
        for r in rows_of(legacy, HO_SO)
        if r.TRANG_THAI in IN_FLIGHT_STATUSES
        and (r.MA_DV.strip().upper(), r.MA_THU_TUC, f"{r.KY_KE_KHAI[3:]}-{r.KY_KE_KHAI[:2]}") in portal_keys
    }
    assert likely == set(truth.likely_duplicates) != set()
    assert set(truth.likely_duplicate_pairs) == likely

    legacy_codes = {r.MA_DV.strip().upper() for r in unit_rows}
    cutover_midnight = dt.datetime.combine(truth.cutover, dt.time())
    portal_units = rows_of(target, units)
    conflicts = sorted(
        r.unit_code for r in portal_units if r.unit_code in legacy_codes and r.updated_at > cutover_midnight
    )
    assert conflicts == truth.target_conflicts != []
    assert sorted(r.unit_code for r in portal_units if r.unit_code not in legacy_codes) == sorted(
        truth.portal_only_units
    )


def test_truth_file_round_trips(site, tmp_path):
    *_, truth, _ = site
    path = tmp_path / "truth.json"
    truth.write(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["cutover"] == "2025-07-01" and data["world_now"] == "2025-07-31T00:00:00"
    assert all(isinstance(d["key"], str) for d in data["defects"])
    assert DemoTruth.read(path) == truth
    assert DemoTruth.read(path).to_dict() == data


# --- every defect is planted, where the truth says, and nowhere else -------------------------


def _cell(engine: sa.Engine, table: sa.Table, key_column: str, key: str, column: str):
    key_value = int(key) if isinstance(table.c[key_column].type, sa.Integer) else key
    with engine.connect() as conn:
        return conn.execute(sa.select(table.c[column]).where(table.c[key_column] == key_value)).scalar_one()


def test_every_defect_kind_is_planted_at_small_scale(site):
    *_, truth, _ = site
    counted = Counter(d["kind"] for d in truth.defects)
    assert set(counted) == set(ALL_KINDS)
    assert dict(counted) == truth.defect_counts
    for encodings in truth.encodings.values():
        for per_kind in encodings.values():
            assert set(per_kind) == {"tcvn3", "vni", "nfd"}
    by_column = Counter(
        (d["table"], d["column"], ENCODING_KINDS[d["kind"]]) for d in truth.defects if d["kind"] in ENCODING_KINDS
    )
    assert {
        (t, c, k): n for t, cols in truth.encodings.items() for c, ks in cols.items() for k, n in ks.items() if n
    } == dict(by_column)
    assert all(truth.encodings["DM_DONVI"]["TEN_DV"][k] >= 1 for k in ("tcvn3", "vni", "nfd"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_defect_kind_status_and_mode_whatever_the_seed(tmp_path, seed):
    legacy, _, truth = make_site(tmp_path, "s", seed=seed, target=False)
    assert set(truth.defect_counts) == set(ALL_KINDS)
    assert all(n > 0 for n in truth.dossiers_by_status.values())
    assert 0 < truth.overdue_in_flight < truth.in_flight_dossiers
    units_rows = rows_of(legacy, DM_DONVI)
    assert {r.PHUONG_THUC_GD for r in units_rows} == {1, 2, 3}
    assert all((r.MA_IVAN is not None) == (r.SERIAL_CTS is not None) == (r.PHUONG_THUC_GD == 3) for r in units_rows)
    assert all(r.CTS_TU_NGAY < r.CTS_DEN_NGAY for r in units_rows if r.PHUONG_THUC_GD == 3)
    assert len({r.MA_THU_TUC for r in rows_of(legacy, HO_SO)}) >= 4


def test_planted_values_are_in_the_database_and_repairable(site):
    legacy, _, truth, _ = site
    keys = {
        "DM_DONVI": "MA_DV",
        "NGUOI_LAO_DONG": "MA_SO_BHXH",
        "HO_SO": "ID_HO_SO",
        "HO_SO_TEP": "ID_TEP",
        "HO_SO_LICH_SU": "ID",
        "DM_COQUAN_BHXH": "MA_CQ",
    }
    metadata = sa.MetaData()
    for defect in truth.defects:
        if defect["table"] not in keys or defect["kind"] in ("attachment_md5_mismatch",):
            continue
        table = (
            sa.Table(defect["table"], metadata, autoload_with=legacy)
            if defect["table"] not in metadata.tables
            else metadata.tables[defect["table"]]
        )
        stored = _cell(legacy, table, keys[defect["table"]], defect["key"], defect["column"])
        if defect["kind"] == "received_after_cutover":
            assert stored.isoformat(sep=" ") == defect["value"]
        else:
            assert stored == defect["value"], defect
        clean = defect.get("clean_value")
        if defect["kind"] == "text_tcvn3":
            assert decode_tcvn3_mojibake(stored) == clean != stored
        elif defect["kind"] == "text_tcvn3_caps":  # capitals at TCVN 5712's own capital codes
            assert decode_tcvn3_mojibake(stored) == clean != stored and clean == clean.upper()
        elif defect["kind"] == "text_vni":
            assert decode_vni_mojibake(stored) == clean != stored
        elif defect["kind"] == "text_nfd":
            assert unicodedata.normalize("NFC", stored) == clean != stored
        elif (
            defect["kind"] in ("stray_whitespace", "lower_case_code", "duplicate_unit_code")
            and defect["column"] == "MA_DV"
        ):
            assert stored.strip().upper() == clean


def test_text_outside_the_planted_cells_is_clean_nfc_vietnamese(site):
    legacy, _, truth, _ = site
    allowed = set(VIETNAMESE_LETTERS) | {chr(c) for c in range(32, 127)}
    planted = {(d["table"], d["key"], d["column"]) for d in truth.defects}
    checks = (
        (DM_DONVI, "MA_DV", ("TEN_DV", "DIA_CHI")),
        (NGUOI_LAO_DONG, "MA_SO_BHXH", ("HO_TEN",)),
        (HO_SO, "ID_HO_SO", ("GHI_CHU",)),
    )
    for table, key, columns in checks:
        for row in rows_of(legacy, table):
            for column in columns:
                value = getattr(row, column)
                if value is None or (table.name, str(getattr(row, key)), column) in planted:
                    continue
                assert value != "" and value == value.strip() and "  " not in value
                assert unicodedata.is_normalized("NFC", value) and set(value) <= allowed, (table.name, value)


def test_identifiers_are_valid_except_the_planted_ones(site):
    legacy, _, truth, _ = site
    planted = {(d["table"], d["key"], d["column"]): d["kind"] for d in truth.defects}
    for row in rows_of(legacy, DM_DONVI):
        kind = planted.get(("DM_DONVI", row.MA_DV, "MA_SO_THUE"))
        if kind == "tax_code_bad_check_digit":
            with pytest.raises(InvalidChecksum):
                mst.validate(row.MA_SO_THUE)
        elif kind == "tax_code_malformed":
            with pytest.raises(ValidationError):
                mst.validate(row.MA_SO_THUE)
            assert not row.MA_SO_THUE.isdigit() or len(row.MA_SO_THUE) != 10
        elif kind == "empty_string_as_null":
            assert row.MA_SO_THUE == ""
        elif row.MA_SO_THUE is not None:
            assert mst.is_valid(row.MA_SO_THUE), row.MA_SO_THUE  # an independent check-digit implementation
            assert len(row.MA_SO_THUE) in (10, 14)
    for row in rows_of(legacy, NGUOI_LAO_DONG):
        number_planted = planted.get(("NGUOI_LAO_DONG", row.MA_SO_BHXH, "MA_SO_BHXH"))
        assert (len(row.MA_SO_BHXH) == 10 and row.MA_SO_BHXH.isdigit()) == (number_planted != "bad_social_insurance_no")
        card_planted = planted.get(("NGUOI_LAO_DONG", row.MA_SO_BHXH, "SO_CCCD"))
        card_ok = row.SO_CCCD is None or (row.SO_CCCD.isdigit() and len(row.SO_CCCD) in (9, 12))
        assert card_ok == (card_planted not in ("bad_citizen_id", "empty_string_as_null")), row
    # Duplicate units collide only after normalization, duplicate persons share name, birth and card.
    codes = Counter(r.MA_DV.strip().upper() for r in rows_of(legacy, DM_DONVI))
    assert {c for c, n in codes.items() if n > 1} == {d["clean_value"] for d in truth.defects_of("duplicate_unit_code")}
    people = Counter((r.HO_TEN, r.NGAY_SINH, r.SO_CCCD) for r in rows_of(legacy, NGUOI_LAO_DONG) if r.SO_CCCD)
    assert sum(n - 1 for n in people.values()) == truth.defect_counts["duplicate_person"]


def test_orphans_are_exactly_the_planted_ones(site):
    legacy, _, truth, _ = site
    unit_codes = {r.MA_DV.strip().upper() for r in rows_of(legacy, DM_DONVI)}
    dossier_ids = {r.ID_HO_SO for r in rows_of(legacy, HO_SO)}
    orphans = {
        ("NGUOI_LAO_DONG", r.MA_SO_BHXH)
        for r in rows_of(legacy, NGUOI_LAO_DONG)
        if r.MA_DV.strip().upper() not in unit_codes
    }
    orphans |= {("HO_SO", str(r.ID_HO_SO)) for r in rows_of(legacy, HO_SO) if r.MA_DV.strip().upper() not in unit_codes}
    assert orphans == {(d["table"], d["key"]) for d in truth.defects_of("orphan_unit_reference")}
    dangling = {("HO_SO_TEP", str(r.ID_TEP)) for r in rows_of(legacy, HO_SO_TEP) if r.ID_HO_SO not in dossier_ids}
    dangling |= {("HO_SO_LICH_SU", str(r.ID)) for r in rows_of(legacy, HO_SO_LICH_SU) if r.ID_HO_SO not in dossier_ids}
    assert dangling == {(d["table"], d["key"]) for d in truth.defects_of("orphan_dossier_reference")}


def test_dates_are_valid_ordered_and_before_the_worlds_now(site):
    legacy, _, truth, _ = site
    now = truth.world_now
    for row in rows_of(legacy, HO_SO):
        assert all(
            isinstance(v, dt.datetime) and v.microsecond == 0 and v < now for v in (row.NGAY_NOP, row.NGAY_CAP_NHAT)
        )
        moments = [m for m in (row.NGAY_NOP, row.NGAY_TIEP_NHAN, row.NGAY_TRA_KQ, row.NGAY_CAP_NHAT) if m]
        assert moments == sorted(moments)
        assert (row.NGAY_TIEP_NHAN is None) == (row.NGAY_HEN_TRA is None)
        assert (row.NGAY_TRA_KQ is not None) == (row.TRANG_THAI in (4, 5))
        assert (row.SO_KET_QUA is not None) == (row.TRANG_THAI == 4)
        month, year = row.KY_KE_KHAI.split("/")
        assert len(month) == 2 and 1 <= int(month) <= 12 and len(year) == 4
    assert all(r.NGAY_CAP_NHAT < now for r in rows_of(legacy, DM_DONVI) + rows_of(legacy, NGUOI_LAO_DONG))


def test_history_leads_to_each_dossiers_current_status(site):
    legacy, _, _, _ = site
    history: dict[int, list] = {}
    for row in sorted(rows_of(legacy, HO_SO_LICH_SU), key=lambda r: r.ID):
        history.setdefault(row.ID_HO_SO, []).append(row)
    for dossier in rows_of(legacy, HO_SO):
        steps = history[dossier.ID_HO_SO]
        assert steps[0].TRANG_THAI_CU is None and steps[0].TRANG_THAI_MOI == 0
        assert all(a.TRANG_THAI_MOI == b.TRANG_THAI_CU and a.THOI_GIAN < b.THOI_GIAN for a, b in zip(steps, steps[1:]))
        assert steps[-1].TRANG_THAI_MOI == dossier.TRANG_THAI
        assert steps[-1].THOI_GIAN <= dossier.NGAY_CAP_NHAT
        received = [s.THOI_GIAN for s in steps if s.TRANG_THAI_MOI == 1 and s.TRANG_THAI_CU == 0]
        assert received == ([dossier.NGAY_TIEP_NHAN] if dossier.NGAY_TIEP_NHAN else [])


def test_attachments_match_size_and_md5_except_the_planted_ones(site):
    legacy, _, truth, files = site
    missing, mismatched = set(truth.attachments["missing_on_disk"]), set(truth.attachments["md5_mismatch"])
    assert missing and mismatched
    referenced = set()
    for row in rows_of(legacy, HO_SO_TEP):
        if row.NOI_DUNG is not None:
            content = row.NOI_DUNG
        else:
            path = files / row.DUONG_DAN
            referenced.add(row.DUONG_DAN)
            if str(row.ID_TEP) in missing:
                assert not path.exists()
                continue
            content = path.read_bytes()
        assert len(content) == row.KICH_THUOC
        assert (hashlib.md5(content).hexdigest() == row.MD5) == (str(row.ID_TEP) not in mismatched), row.ID_TEP
    # Every file on disk is referenced, except the one planted unreferenced (recorded with its size and hash).
    unreferenced = {f["path"]: f for f in truth.unreferenced_files}
    assert (
        set(folder_digest(files))
        == (referenced - {d["value"] for d in truth.defects_of("attachment_missing")}) | set(unreferenced)
        and len(unreferenced) == 1
    )
    for path, planted in unreferenced.items():
        content = (files / path).read_bytes()
        assert (len(content), hashlib.sha256(content).hexdigest()) == (planted["size"], planted["sha256"])
    blobs = [r.NOI_DUNG for r in rows_of(legacy, HO_SO_TEP) if r.NOI_DUNG is not None]
    assert any(b"\x00" in b for b in blobs)
    assert any(_not_utf8(b) for b in blobs)
    assert any(not r.TEN_TEP.isascii() for r in rows_of(legacy, HO_SO_TEP))
    assert any(not p.isascii() for p in referenced)


def _not_utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_duplicate_rows_in_the_keyless_import_table(site):
    legacy, _, truth, _ = site
    with legacy.connect() as conn:
        table = sa.Table("IMPORT_TAM", sa.MetaData(), autoload_with=conn)
        copies = Counter(tuple(r) for r in conn.execute(sa.select(table)))
    duplicated = {row[0]: n for row, n in copies.items() if n > 1}
    assert duplicated == {d["key"]: d["value"] for d in truth.defects_of("duplicate_row")} != {}


# --- refusals ---------------------------------------------------------------------------------


def test_refuses_a_database_that_already_has_tables(tmp_path):
    legacy = sa.create_engine(f"sqlite:///{tmp_path / 'someone.sqlite'}")
    with legacy.begin() as conn:
        conn.execute(sa.text("CREATE TABLE precious (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO precious VALUES (1)"))
    with pytest.raises(UsageError, match="already has 1 table"):
        generate_site(legacy, tmp_path / "files", scale=SCALE)
    assert sa.inspect(legacy).get_table_names() == ["precious"]
    assert not (tmp_path / "files").exists()

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.pdf").write_bytes(b"%PDF")
    empty = sa.create_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with pytest.raises(UsageError, match="not empty"):
        generate_site(empty, tmp_path / "busy", scale=SCALE)
    assert sa.inspect(empty).get_table_names() == []
    with pytest.raises(UsageError, match="scale"):
        generate_site(empty, tmp_path / "new", scale=0)


# --- CLI and demo inventory ---------------------------------------------------------------------


def test_cli_demo_data_writes_site_and_truth(tmp_path, capsys):
    code = main(
        [
            "--json",
            "demo-data",
            "--legacy-sqlite",
            str(tmp_path / "l.sqlite"),
            "--attachments",
            str(tmp_path / "files"),
            "--target-sqlite",
            str(tmp_path / "t.sqlite"),
            "--scale",
            str(SCALE),
            "--seed",
            "5",
            "--truth",
            str(tmp_path / "truth.json"),
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    truth = DemoTruth.read(tmp_path / "truth.json")
    assert summary["tables"] == {n: i["rows"] for n, i in truth.tables.items()}
    assert truth.seed == 5 and truth.has_target

    # Again into the same (now full) database: one line, usage exit code, nothing overwritten.
    code = main(["demo-data", "--legacy-sqlite", str(tmp_path / "l.sqlite"), "--attachments", str(tmp_path / "f2")])
    assert code == 2 and "already has" in capsys.readouterr().err


def test_cli_never_prints_a_database_password(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DEMO_LEGACY_URL", "mysql+pyodbc://ts24:Sup3rS3cret@127.0.0.1:1/x?driver=MariaDB+Unicode")
    code = main(["demo-data", "--legacy-url-env", "DEMO_LEGACY_URL", "--attachments", str(tmp_path / "f")])
    captured = capsys.readouterr()
    assert code == 3
    assert "Sup3rS3cret" not in captured.out + captured.err and "unreachable" in captured.err
    code = main(["demo-data", "--legacy-url-env", "NOT_SET_ANYWHERE", "--attachments", str(tmp_path / "f")])
    assert code == 2 and "NOT_SET_ANYWHERE" in capsys.readouterr().err


def test_write_demo_inventory_makes_a_usable_site_folder(tmp_path):
    inventory_path = write_demo_inventory(tmp_path / "demo", scale=SCALE, seed=3)
    app = App(inventory_path)
    site = app.site("demo")
    secret = tmp_path / "demo" / "secrets" / "demo.legacy.url"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert "sqlite" not in inventory_path.read_text()  # only references in the inventory
    truth = DemoTruth.read(tmp_path / "demo" / "truth" / "demo.truth.json")
    legacy = app.legacy_engine(site)  # read-only, as every stage but purge opens it
    try:
        assert {n: int(f.partition(";")[0][5:]) for n, f in fingerprints(legacy).items()} == {
            n: i["rows"] for n, i in truth.tables.items()
        }
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            with legacy.begin() as conn:
                conn.execute(sa.delete(HO_SO))
        assert app.inventory.attachments_path(site).is_dir()
        with app.target_engine().connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(re_registrations)).scalar() == len(
                truth.reregistered
            )
    finally:
        app.close()

    # A second site joins the same inventory and new system; a repeated id is refused.
    write_demo_inventory(tmp_path / "demo", site_id="hp-01", office_code="31", scale=SCALE)
    assert [s.id for s in App(inventory_path).inventory.sites] == ["demo", "hp-01"]
    with pytest.raises(UsageError, match="already has a site"):
        write_demo_inventory(tmp_path / "demo", site_id="hp-01", office_code="31", scale=SCALE)


# --- advance_site -------------------------------------------------------------------------------


def _snapshot(engine: sa.Engine, table: sa.Table, key: str) -> dict:
    return {getattr(r, key): tuple(r) for r in rows_of(engine, table)}


def test_advance_changes_exactly_what_it_reports(tmp_path):
    legacy, target, truth = make_site(tmp_path, "adv")
    files = tmp_path / "adv-files"
    before = fingerprints(legacy)
    dossiers_before = _snapshot(legacy, HO_SO, "ID_HO_SO")
    history_before = _snapshot(legacy, HO_SO_LICH_SU, "ID")
    files_before = folder_digest(files)
    registered_before = {r.unit_code for r in rows_of(target, re_registrations)}

    step = advance_site(legacy, target, files, days=10, seed=1)
    assert step.started_at == truth.world_now and step.world_now == truth.world_now + dt.timedelta(days=10)

    dossiers_after = _snapshot(legacy, HO_SO, "ID_HO_SO")
    changed = {str(k) for k, v in dossiers_after.items() if k in dossiers_before and dossiers_before[k] != v}
    assert changed == set(step.changed_dossiers) != set()
    assert {str(k) for k in dossiers_after.keys() - dossiers_before.keys()} == {step.forbidden_receipt}
    history_after = _snapshot(legacy, HO_SO_LICH_SU, "ID")
    assert all(history_after[k] == v for k, v in history_before.items())
    assert {str(k) for k in history_after.keys() - history_before.keys()} == set(step.new_history_ids)
    after = fingerprints(legacy)
    assert {n for n in after if after[n] != before[n]} == {"HO_SO", "HO_SO_LICH_SU", "HO_SO_TEP"}
    new_files = {r.ID_TEP for r in rows_of(legacy, HO_SO_TEP)} - {int(i) for i in step.new_file_ids}
    assert len(new_files) == truth.tables["HO_SO_TEP"]["rows"]
    assert set(folder_digest(files)) - set(files_before) == set(step.new_files_on_disk) != set()

    for dossier_id in step.finished_dossiers:
        row = dossiers_after[int(dossier_id)]
        status = row[HO_SO.c.keys().index("TRANG_THAI")]
        assert status in (4, 5, 6)
    for dossier_id in step.changed_dossiers:
        old, new = dossiers_before[int(dossier_id)], dossiers_after[int(dossier_id)]
        assert old[HO_SO.c.keys().index("TRANG_THAI")] in IN_FLIGHT_STATUSES
        assert new[HO_SO.c.keys().index("NGAY_CAP_NHAT")] >= step.started_at
    receipt = dossiers_after[int(step.forbidden_receipt)]
    assert receipt[HO_SO.c.keys().index("NGAY_TIEP_NHAN")].date() > truth.cutover
    assert receipt[HO_SO.c.keys().index("TRANG_THAI")] == 1
    # No dossier that awaited receipt was received: the one receipt is the forbidden one.
    received_now = [
        r
        for r in rows_of(legacy, HO_SO_LICH_SU)
        if str(r.ID) in step.new_history_ids and r.TRANG_THAI_MOI == 1 and r.TRANG_THAI_CU == 0
    ]
    assert [r.ID_HO_SO for r in received_now] == [int(step.forbidden_receipt)]
    test_history_leads_to_each_dossiers_current_status((legacy, None, None, None))

    registered_after = [r.unit_code for r in rows_of(target, re_registrations)]
    assert sorted(set(registered_after) - registered_before) == step.new_reregistrations != []
    assert len(registered_after) == len(set(registered_after))  # nobody registered twice
    assert AdvanceTruth.from_dict(json.loads(json.dumps(step.to_dict()))) == step


def test_repeated_advances_then_drain(tmp_path):
    legacy, target, truth = make_site(tmp_path, "drain")
    files = tmp_path / "drain-files"
    first = advance_site(legacy, target, files, days=3, seed=1)
    second = advance_site(legacy, target, files, days=4, seed=1)
    assert second.started_at == first.world_now and second.world_now == first.world_now + dt.timedelta(days=4)
    assert first.forbidden_receipt != second.forbidden_receipt
    assert not set(first.new_history_ids) & set(second.new_history_ids)

    drained = advance_site(legacy, target, files, days=2, seed=1, drain=True)
    assert drained.forbidden_receipt is None and drained.in_flight_after == 0
    assert str(second.forbidden_receipt) in drained.finished_dossiers
    with legacy.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(HO_SO).where(HO_SO.c.TRANG_THAI.in_(IN_FLIGHT_STATUSES))
            ).scalar()
            == 0
        )
    assert drained.world_now == second.world_now + dt.timedelta(days=2)
    test_history_leads_to_each_dossiers_current_status((legacy, None, None, None))

    # TS24 keeps misbehaving after the drain: one more forbidden receipt is in flight again.
    again = advance_site(legacy, target, files, days=1, seed=2)
    assert again.in_flight_after == 1 and again.changed_dossiers == []


def test_advance_refuses_a_target_that_is_not_a_demo_new_system(tmp_path):
    legacy, _, _ = make_site(tmp_path, "plain", target=False)
    before = fingerprints(legacy)
    stranger = sa.create_engine(f"sqlite:///{tmp_path / 'stranger.sqlite'}")
    with pytest.raises(UsageError, match="re_registrations"):
        advance_site(legacy, stranger, tmp_path / "plain-files", days=3, seed=1)
    assert fingerprints(legacy) == before
    with pytest.raises(UsageError, match="days"):
        advance_site(legacy, None, tmp_path / "plain-files", days=0, seed=1)


def test_cli_demo_advance_opens_the_site_writable(tmp_path, capsys):
    inventory_path = write_demo_inventory(tmp_path / "demo", scale=SCALE)
    code = main(
        [
            "-i",
            str(inventory_path),
            "--json",
            "demo-advance",
            "demo",
            "--days",
            "3",
            "--truth",
            str(tmp_path / "step.json"),
        ]
    )
    assert code == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported.pop("ok") is True and reported.pop("exit_code") == 0
    assert reported == AdvanceTruth.read(tmp_path / "step.json").to_dict()
    assert reported["forbidden_receipt"] and reported["world_now"] == "2025-08-03T00:00:00"
    assert main(["-i", str(inventory_path), "demo-advance", "nosuch", "--days", "1"]) == 2
    assert main(["-i", str(inventory_path), "demo-advance", "demo", "--days", "0"]) == 2
