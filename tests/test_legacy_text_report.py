"""All-caps legacy text and legacy date forms, through a real migration into SQLite, up to the auditor report.

A small demo site gets, in its legacy database, unit and person names typed in
capitals the ways TS24 sites hold them (TCVN 5712 capital codes, VN3 codes in
a capital font, VNI capitals), one value no decoding repairs, and birth dates
in variant and ambiguous forms. It is then backed up, verified, loaded and
validated as an operator does, and the tests read the new system and the
validation report: every value is repaired or loaded with a flag, never
garbled without one, and the report's flags section says so.
"""

from __future__ import annotations

import contextlib
import io
import json
import unicodedata
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_report_support import parse_page
from test_stages_support import through

from load import target_schema as ts
from load.bookkeeping import crosswalk, flags
from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.main import main
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.legacy.encodings import TCVN3_CAPITAL_CONTROLS, encode_as_tcvn3_mojibake, encode_as_vni_mojibake
from ts24_migrate.core.legacy.schema import DM_DONVI, NGUOI_LAO_DONG
from ts24_migrate.core.legacy.text_repair import repair_text
from ts24_migrate.core.personal_data import mask_example, mask_legacy_key
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.demo import DemoTruth
from ts24_migrate.runs.app import App

pytestmark = pytest.mark.slow

SITE = "demo"
# clean value -> how it is typed in the legacy database, and the encoding the transform must find
UNIT_NAMES = [
    ("BẢO HIỂM XÃ HỘI", lambda t: encode_as_tcvn3_mojibake(t, capital_codes=True), "TEXT_REPAIRED_TCVN3"),
    ("ĐỒNG THÁP", lambda t: encode_as_tcvn3_mojibake(t, capital_codes=True), "TEXT_REPAIRED_TCVN3"),
    ("CÔNG TY TNHH HÀ NỘI", lambda t: encode_as_tcvn3_mojibake(t, capital_codes=True), "TEXT_REPAIRED_TCVN3"),
    ("NGUYỄN VĂN ĐỨC", lambda t: encode_as_tcvn3_mojibake(t, capital_codes=True), "TEXT_REPAIRED_TCVN3"),
    ("CÔNG TY CỔ PHẦN XÂY DỰNG SỐ 1", encode_as_tcvn3_mojibake, "TEXT_REPAIRED_TCVN3"),  # a capital font
    ("HỢP TÁC XÃ NÔNG NGHIỆP ĐỒNG THÁP", encode_as_vni_mojibake, "TEXT_REPAIRED_VNI"),
]
SUSPECT = "B\x81O H\x81\x81M X‚ H—I"  # TCVN 5712 capitals, one word of which decodes to no Vietnamese
PERSON_CAPS = "TRẦN THỊ HƯƠNG"
BIRTH_DATES = {
    "15-08-1985": "accepted",
    "1985-08-15": "accepted",
    "15/08/85": "BIRTH_DATE_TWO_DIGIT_YEAR",
    "12/05-1990": "BIRTH_DATE_INVALID",
}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("legacy-text")
    recipient = generate_custodian_identity(folder / "keys" / "custodian.age-identity")
    generate_signing_key(folder / "keys" / "signing.key")
    inventory = write_demo_inventory(
        folder / "site", scale=0.02, backup_recipients=[recipient], signing_key=folder / "keys" / "signing.key"
    )
    truth = DemoTruth.read(folder / "site" / "truth" / f"{SITE}.truth.json")
    # rows whose name, key or birth date the demo planted a defect in, or that the load refuses (conflicts)
    planted = (
        {
            (d["table"], d["key"])
            for d in truth.defects
            if d["column"] in ("TEN_DV", "MA_DV", "HO_TEN", "NGAY_SINH", "MA_SO_BHXH")
            or d["kind"] == "duplicate_person"
        }
        | {("NGUOI_LAO_DONG", d["clean_value"]) for d in truth.defects if d["kind"] == "duplicate_person"}
        | {("DM_DONVI", c) for c in truth.target_conflicts}
    )
    legacy = sa.create_engine(f"sqlite:///{folder / 'site' / 'legacy' / f'{SITE}.sqlite'}")
    with legacy.begin() as conn:  # the site's clerks typed these; nothing else of the demo is touched
        units = [
            k
            for k in conn.execute(sa.select(DM_DONVI.c.MA_DV).order_by(DM_DONVI.c.MA_DV)).scalars()
            if ("DM_DONVI", k) not in planted
        ]
        unit_keys = {}
        for key, (clean, encode, _) in zip(units, UNIT_NAMES):
            conn.execute(DM_DONVI.update().where(DM_DONVI.c.MA_DV == key).values(TEN_DV=encode(clean)))
            unit_keys[clean] = key
        suspect_key = units[len(UNIT_NAMES)]
        conn.execute(DM_DONVI.update().where(DM_DONVI.c.MA_DV == suspect_key).values(TEN_DV=SUSPECT))
        persons = [
            k
            for k in conn.execute(
                sa.select(NGUOI_LAO_DONG.c.MA_SO_BHXH).order_by(NGUOI_LAO_DONG.c.MA_SO_BHXH)
            ).scalars()
            if ("NGUOI_LAO_DONG", k) not in planted
        ]
        person_keys = dict(zip(BIRTH_DATES, persons))
        for text, key in person_keys.items():
            conn.execute(NGUOI_LAO_DONG.update().where(NGUOI_LAO_DONG.c.MA_SO_BHXH == key).values(NGAY_SINH=text))
        caps_person = persons[len(BIRTH_DATES)]
        conn.execute(
            NGUOI_LAO_DONG.update()
            .where(NGUOI_LAO_DONG.c.MA_SO_BHXH == caps_person)
            .values(HO_TEN=encode_as_tcvn3_mojibake(PERSON_CAPS, capital_codes=True))
        )
    legacy.dispose()

    app = App(inventory)
    through(
        app, SITE, "assess", "backup", "verify-identity", "load", identity=folder / "keys" / "custodian.age-identity"
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-i", str(inventory), "--json", "validate", SITE])
    assert code == 0, err.getvalue()
    result = json.loads(out.getvalue())
    report = json.loads(Path(result["reports"]["json"]).read_text(encoding="utf-8"))
    html = Path(result["reports"]["html"]).read_text(encoding="utf-8")
    yield {
        "app": app,
        "target": app.target_engine(),
        "report": report,
        "html": html,
        "unit_keys": unit_keys,
        "suspect_key": suspect_key,
        "person_keys": person_keys,
        "caps_person": caps_person,
    }
    app.close()


def _loaded(target, table: sa.Table, legacy_table: str, key: str) -> tuple[sa.Row, set[str]]:
    """The business row loaded from a legacy key, and its flags (its crosswalk row's)."""
    key_column = table.primary_key.columns.values()[0]
    with target.connect() as conn:
        target_key, dq_flags = conn.execute(
            sa.select(crosswalk.c.target_key, crosswalk.c.dq_flags).where(
                crosswalk.c.site_id == SITE, crosswalk.c.legacy_table == legacy_table, crosswalk.c.legacy_key == key
            )
        ).one()
        row = conn.execute(sa.select(table).where(sa.cast(key_column, sa.String) == target_key)).one()
    return row, set((dq_flags or "").split(";")) - {""}


def test_all_caps_names_are_repaired_in_the_new_system_with_their_flag(migrated):
    for clean, _encode, flag in UNIT_NAMES:
        row, codes = _loaded(migrated["target"], ts.units, "DM_DONVI", migrated["unit_keys"][clean])
        assert row.name == clean and flag in codes, (clean, codes)
    person, codes = _loaded(migrated["target"], ts.insured_persons, "NGUOI_LAO_DONG", migrated["caps_person"])
    assert person.full_name == PERSON_CAPS and "TEXT_REPAIRED_TCVN3" in codes


def test_a_value_no_decoding_repairs_is_loaded_as_it_was_with_a_flag(migrated):
    row, codes = _loaded(migrated["target"], ts.units, "DM_DONVI", migrated["suspect_key"])
    assert row.name == SUSPECT and "TEXT_ENCODING_SUSPECT" in codes


def test_no_name_is_loaded_garbled_without_a_flag(migrated):
    """Every unit and person name in the new system is Vietnamese (or plain text) as it stands, or
    carries the flag that says it is not."""
    doubt = {"TEXT_ENCODING_SUSPECT", "TEXT_ENCODING_AMBIGUOUS"}
    checked = 0
    with migrated["target"].connect() as conn:
        for table, column, key in (
            (ts.units, ts.units.c.name, ts.units.c.unit_id),
            (ts.insured_persons, ts.insured_persons.c.full_name, ts.insured_persons.c.person_id),
        ):
            query = sa.select(column, crosswalk.c.dq_flags).join(
                crosswalk,
                sa.and_(
                    crosswalk.c.target_table == table.name,
                    crosswalk.c.target_key == sa.cast(key, sa.String),
                    crosswalk.c.site_id == SITE,
                ),
            )
            for value, dq_flags in conn.execute(query):
                checked += 1
                codes = set((dq_flags or "").split(";"))
                if codes & doubt:
                    continue
                assert unicodedata.is_normalized("NFC", value) and not set(value) & TCVN3_CAPITAL_CONTROLS, value
                assert repair_text(value) == (value, "ascii" if value.isascii() else "nfc"), value
    assert checked > 50


def test_birth_date_forms_are_parsed_or_rejected_with_their_reason(migrated):
    report, target = migrated["report"], migrated["target"]
    keys = migrated["person_keys"]
    for text, outcome in BIRTH_DATES.items():
        if outcome == "accepted":
            person, codes = _loaded(target, ts.insured_persons, "NGUOI_LAO_DONG", keys[text])
            assert str(person.birth_date)[:10] == "1985-08-15" and "DATE_FORM_VARIANT" in codes
    rejects = report["rejects"]["tables"]["NGUOI_LAO_DONG"]
    assert rejects["by_reason"]["BIRTH_DATE_TWO_DIGIT_YEAR"] == 1
    (example,) = rejects["examples"]["BIRTH_DATE_TWO_DIGIT_YEAR"]
    # Personal data is masked in the report (ts24_migrate/core/personal_data.py): the key, and the year only.
    assert (example["legacy_key"], example["field"], example["value"]) == (
        mask_legacy_key("NGUOI_LAO_DONG", keys["15/08/85"]),
        "NGAY_SINH",
        "**/**/85",
    )
    assert "form dd/mm/yy" in example["message"] and "15/08/85" not in example["message"]
    mixed = [
        e
        for e in rejects["examples"]["BIRTH_DATE_INVALID"]
        if e["legacy_key"] == mask_legacy_key("NGUOI_LAO_DONG", keys["12/05-1990"])
    ]
    assert not mixed or "mixes separators" in mixed[0]["message"]


def test_the_report_lists_flags_by_table_and_code_with_counts_and_examples(migrated):
    report, target = migrated["report"], migrated["target"]
    section = report["flags"]
    with target.connect() as conn:
        recorded = conn.execute(
            sa.select(flags.c.legacy_table, flags.c.flag_code, sa.func.count(sa.distinct(flags.c.legacy_key)))
            .where(flags.c.site_id == SITE)
            .group_by(flags.c.legacy_table, flags.c.flag_code)
        ).all()
        for table, entry in section["tables"].items():
            assert set(entry["examples"]) == set(entry["rows_flagged"])
            for code, examples in entry["examples"].items():
                assert 1 <= len(examples) <= min(3, entry["rows_flagged"][code])
                # Each example is a real flagged value (legacy key, field, original, loaded), as the report shows
                # it: personal data masked (ts24_migrate/core/personal_data.py).
                shown = [
                    mask_example({"legacy_key": k, "field": f, "original_value": o, "loaded_value": v}, table=table)
                    for k, f, o, v in conn.execute(
                        sa.select(
                            flags.c.legacy_key, flags.c.field, flags.c.original_value, flags.c.loaded_value
                        ).where(flags.c.site_id == SITE, flags.c.legacy_table == table, flags.c.flag_code == code)
                    )
                ]
                for e in examples:
                    assert set(e) == {"legacy_key", "field", "original_value", "loaded_value"}
                    assert e in shown
    assert {(t, c): n for t, e in section["tables"].items() for c, n in e["rows_flagged"].items()} == {
        (t, c): n for t, c, n in recorded
    }
    units = section["tables"]["DM_DONVI"]
    assert units["target_table"] == "units"
    assert units["rows_flagged"]["TEXT_REPAIRED_TCVN3"] >= 5  # ours, and the demo's own
    assert units["rows_flagged"]["TEXT_ENCODING_SUSPECT"] == 1
    (example,) = units["examples"]["TEXT_ENCODING_SUSPECT"]
    assert example == {
        "legacy_key": migrated["suspect_key"],
        "field": "TEN_DV",
        "original_value": SUSPECT,
        "loaded_value": SUSPECT,
    }
    variants = section["tables"]["NGUOI_LAO_DONG"]["examples"]["DATE_FORM_VARIANT"]
    assert {(e["original_value"], e["loaded_value"]) for e in variants} <= {
        ("**-**-1985", "1985-**-**"),
        ("1985-**-**", "1985-**-**"),
    }
    assert section["by_code"]["TEXT_ENCODING_SUSPECT"] == 1

    # ... the Prefect summary names them
    from validation.report import build_site_report
    from validation.report_artifacts import report_markdown

    markdown = report_markdown(build_site_report(migrated["app"].control_store, SITE))
    assert "TEXT_ENCODING_SUSPECT 1" in markdown and "DATE_FORM_VARIANT" in markdown

    # ... and the HTML page shows the same: table, code, count, examples
    page = parse_page(migrated["html"])
    header, *rows = page.tables["flags-table"]
    assert header[:4] == ["legacy table", "flag", "what it means", "rows"]
    shown = {(cells[0], cells[1]): cells for cells in rows}
    assert len(shown) == sum(len(e["rows_flagged"]) for e in section["tables"].values())
    suspect = shown[("DM_DONVI", "TEXT_ENCODING_SUSPECT")]
    assert suspect[3] == "1" and migrated["suspect_key"] in suspect[4] and "TEN_DV" in suspect[4]
    assert "person" in suspect[2]  # what the flag means, from the legend
    tcvn3 = shown[("DM_DONVI", "TEXT_REPAIRED_TCVN3")]
    assert tcvn3[3] == str(units["rows_flagged"]["TEXT_REPAIRED_TCVN3"])
    assert all(e["loaded_value"] in tcvn3[4] for e in units["examples"]["TEXT_REPAIRED_TCVN3"])
