"""Assessment figures equal what the demo generator planted, on SQLite and MariaDB over ODBC."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
import sqlalchemy as sa

from extract.assessment import assess_site
from extract.assessment_report import write_assessment_report
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.secrets import Secret
from ts24_migrate.demo import generate_site

CUTOVER = dt.date(2025, 7, 1)


def _check_against_truth(assessment, truth: dict) -> None:
    data = assessment.to_dict()
    assert set(data["tables"]) == set(truth["tables"])
    for name, planted in truth["tables"].items():
        found = data["tables"][name]
        assert found["rows"] == planted["rows"], name
        assert found["primary_key"] == planted["primary_key"], name
        assert found["role"] == planted["role"], name
    assert data["summary"]["tables_without_primary_key"] == sorted(
        n for n, t in truth["tables"].items() if not t["primary_key"]
    )
    assert data["summary"]["unmapped_tables"] == sorted(
        n for n, t in truth["tables"].items() if t["role"] == "unmapped"
    )
    for table, columns in truth["encodings"].items():
        for column, counts in columns.items():
            found = data["tables"][table]["legacy_text"].get(column, {})
            for encoding, n in counts.items():
                assert found.get(encoding, 0) == n, (table, column, encoding)
    planted_text = sum(n for cols in truth["encodings"].values() for c in cols.values() for n in c.values())
    assert sum(data["summary"]["legacy_text_values"].values()) == planted_text  # and no false positives
    assert data["summary"]["uncertain_text_values"] == {"ambiguous": 0, "suspect": 0}
    by_column = {(c["table"], c["column"]): c for c in data["suspected_text_by_column"]}
    assert set(by_column) == {(t, c) for t, cols in truth["encodings"].items() for c in cols}
    for table, columns in truth["encodings"].items():
        for column, counts in columns.items():
            assert {k: by_column[table, column][k] for k in counts} == counts, (table, column)
    names = ["submitted", "received", "processing", "supplement_requested", "done", "refused", "cancelled"]
    assert data["dossiers_by_status"] == {names[int(s)]: n for s, n in truth["dossiers_by_status"].items()}
    assert data["summary"]["in_flight_dossiers"] == truth["in_flight_dossiers"]
    assert data["received_after_cutover_ids"] == sorted(str(i) for i in truth["received_after_cutover"])


def test_assessment_on_sqlite_matches_truth_and_only_reads(tmp_path):
    legacy_file = tmp_path / "legacy.sqlite"
    truth = generate_site(
        sa.create_engine(f"sqlite:///{legacy_file}"), tmp_path / "files", seed=7, scale=0.1, cutover=CUTOVER
    ).to_dict()
    before = hashlib.sha256(legacy_file.read_bytes()).hexdigest()
    engine = legacy_engine(Secret(f"sqlite:///{legacy_file}"))
    with engine.connect() as conn:
        assessment = assess_site(conn, site_id="demo", cutover=CUTOVER)
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            conn.execute(sa.text("DELETE FROM HO_SO"))
    engine.dispose()
    _check_against_truth(assessment, truth)
    assert hashlib.sha256(legacy_file.read_bytes()).hexdigest() == before
    paths = write_assessment_report(assessment, tmp_path / "report")
    html = paths["html"].read_text(encoding="utf-8")
    for name in truth["tables"]:
        assert f"<td>{name}</td>" in html
    assert "NONE (no primary key)" in html
    assert json.loads(paths["json"].read_text())["summary"]["tables"] == len(truth["tables"])


@pytest.mark.mariadb
def test_assessment_on_mariadb_over_odbc_matches_truth(tmp_path, mariadb_database):
    url = mariadb_database()
    writer = sa.create_engine(url)
    truth = generate_site(writer, tmp_path / "files", seed=7, scale=0.1, cutover=CUTOVER).to_dict()
    writer.dispose()
    engine = legacy_engine(Secret(url))
    with engine.connect() as conn:
        assessment = assess_site(conn, site_id="demo", cutover=CUTOVER)
        # The session is read-only: MariaDB itself refuses writes.
        with pytest.raises(sa.exc.DBAPIError, match="(?i)read.only"):
            conn.execute(sa.text("DELETE FROM HO_SO"))
    engine.dispose()
    assert assessment.dialect == "mysql"
    _check_against_truth(assessment, truth)


def test_suspected_text_is_counted_per_column_all_caps_and_uncertain_values_included(tmp_path):
    from ts24_migrate.core.legacy.encodings import encode_as_tcvn3_mojibake
    from ts24_migrate.core.legacy.schema import DM_DONVI, metadata

    legacy_file = tmp_path / "legacy.sqlite"
    writer = sa.create_engine(f"sqlite:///{legacy_file}")
    metadata.create_all(writer, tables=[DM_DONVI])
    names = [
        encode_as_tcvn3_mojibake("CÔNG TY TNHH ĐỒNG THÁP", capital_codes=True),  # TCVN 5712 capitals
        encode_as_tcvn3_mojibake("BẢO HIỂM XÃ HỘI"),  # a capital font
        "Cöa Nam",  # TCVN3 or VNI?
        "B\x81O H\x81\x81M",  # no decoding holds
        "Công ty TNHH Thăng Long",
        "CONG TY ABC",
    ]
    with writer.begin() as conn:
        conn.execute(
            DM_DONVI.insert(),
            [
                {
                    "MA_DV": f"U{i}",
                    "TEN_DV": name,
                    "DIA_CHI": "Hµ Néi" if i == 0 else None,
                    "PHUONG_THUC_GD": 1,
                    "TRANG_THAI": 1,
                    "NGAY_DANG_KY": "01/01/2010",
                    "NGAY_CAP_NHAT": dt.datetime(2025, 1, 1),
                }
                for i, name in enumerate(names)
            ],
        )
    writer.dispose()
    engine = legacy_engine(Secret(f"sqlite:///{legacy_file}"))
    with engine.connect() as conn:
        assessment = assess_site(conn, site_id="demo", cutover=CUTOVER)
    engine.dispose()
    data = assessment.to_dict()
    assert data["tables"]["DM_DONVI"]["legacy_text"] == {
        "TEN_DV": {"tcvn3": 2, "ambiguous": 1, "suspect": 1},
        "DIA_CHI": {"tcvn3": 1},
    }
    assert data["summary"]["legacy_text_values"] == {"tcvn3": 3, "vni": 0, "nfd": 0}
    assert data["summary"]["uncertain_text_values"] == {"ambiguous": 1, "suspect": 1}
    assert data["suspected_text_by_column"] == [
        {"table": "DM_DONVI", "column": "DIA_CHI", "tcvn3": 1, "vni": 0, "nfd": 0, "ambiguous": 0, "suspect": 0},
        {"table": "DM_DONVI", "column": "TEN_DV", "tcvn3": 2, "vni": 0, "nfd": 0, "ambiguous": 1, "suspect": 1},
    ]
    paths = write_assessment_report(assessment, tmp_path / "report")
    html = paths["html"].read_text(encoding="utf-8")
    assert "Suspected legacy text by column" in html and "<td>TEN_DV</td>" in html
    assert "| DM_DONVI | TEN_DV | 2 | 0 | 0 | 1 | 1 |" in paths["markdown"].read_text(encoding="utf-8")
