"""A descriptive profile of the legacy data: how dirty it is, before anything is transformed.

Every table the database holds gets its row count; the tables TS24 is known to
have (shared/spec/ts24-legacy.md) also get the expectations a clean TS24
database would meet: keys present and unique, codes and identifiers in their
formats, statuses and modes in their value sets, references that resolve.
Failed expectations here describe the site (lower-case unit codes, orphaned
persons, malformed tax codes...) and never fail the run: the transform
rejects or flags such rows one by one.

Credentials never reach the profile: the system tables (HT_NGUOI_DUNG holds
password hashes) are only counted, so no value of theirs lands in Data Docs.

Runs in the legacy database through the read-only engine it is given (no
temporary tables). `sample_rows` bounds each table to its first rows when a
full pass would be too slow on a large site.

Example::

    profile = run_legacy_profile(legacy_engine, docs_dir=Path("work/sites/hn-01/report/gx-legacy"))
    profile.suite("DM_DONVI").failed      # e.g. MA_DV not matching ^[A-Z0-9]{1,15}$
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from extract.discovery import TableInfo, discover_tables
from ts24_migrate.core.legacy.schema import DOSSIER_STATUS_NAMES, MAPPED_TABLES
from ts24_migrate.core.personal_data import MASKED, Masking

from .gx_runner import SuiteResults, TableBatch, run_suites
from .sql_checks import references, rows_where, tax_code_check_digit_wrong

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

# Dialects whose regular expressions GX can use (SQL Server has none).
REGEX_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")
STATUSES = sorted(DOSSIER_STATUS_NAMES)

# (column, pattern) per mapped legacy table: the format a clean value has.
FORMATS: dict[str, list[tuple[str, str]]] = {
    "DM_COQUAN_BHXH": [("MA_CQ", r"^[0-9]{2}([0-9]{2})?$"), ("MA_TINH", r"^[0-9]{2}$")],
    "DM_DONVI": [
        ("MA_DV", r"^[A-Z0-9]{1,15}$"),
        ("MA_SO_THUE", r"^[0-9]{10}(-[0-9]{3})?$"),
        ("MA_CQ", r"^[0-9]{2}([0-9]{2})?$"),
        ("MA_IVAN", r"^[0-9]{5}$"),
        ("NGAY_DANG_KY", r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$"),
    ],
    "NGUOI_LAO_DONG": [
        ("MA_SO_BHXH", r"^[0-9]{10}$"),
        ("SO_CCCD", r"^([0-9]{9}|[0-9]{12})$"),
        ("NGAY_SINH", r"^(([0-9]{2}/)?[0-9]{2}/)?[0-9]{4}$"),
        ("MA_DV", r"^[A-Z0-9]{1,15}$"),
    ],
    "HO_SO": [("KY_KE_KHAI", r"^(0[1-9]|1[0-2])/[0-9]{4}$"), ("MA_DV", r"^[A-Z0-9]{1,15}$")],
    "HO_SO_TEP": [("MD5", r"^[0-9a-fA-F]{32}$")],
}
# (column, allowed values) per mapped legacy table.
VALUE_SETS: dict[str, list[tuple[str, list[int] | list[str]]]] = {
    "DM_COQUAN_BHXH": [("CAP", [1, 2])],
    "DM_DONVI": [("PHUONG_THUC_GD", [1, 2, 3]), ("TRANG_THAI", [0, 1])],
    "NGUOI_LAO_DONG": [("GIOI_TINH", [0, 1])],
    "HO_SO": [("TRANG_THAI", STATUSES)],
    "HO_SO_TEP": [("LOAI_TEP", ["xml", "pdf"])],
    "HO_SO_LICH_SU": [("TRANG_THAI_MOI", STATUSES), ("TRANG_THAI_CU", STATUSES)],
}
# Columns the new system requires a value for (empty strings count as missing).
REQUIRED: dict[str, list[str]] = {
    "DM_COQUAN_BHXH": ["TEN_CQ"],
    "DM_DONVI": ["TEN_DV"],
    "NGUOI_LAO_DONG": ["HO_TEN", "NGAY_SINH"],
    "HO_SO": ["SO_HO_SO", "MA_DV", "MA_THU_TUC", "NGAY_NOP"],
    "HO_SO_TEP": ["TEN_TEP"],
    "HO_SO_LICH_SU": ["THOI_GIAN"],
}
TEXT_REQUIRED = {"TEN_CQ", "TEN_DV", "HO_TEN", "NGAY_SINH", "SO_HO_SO", "MA_DV", "MA_THU_TUC", "TEN_TEP"}
# (child table, column, parent table, parent column): references the spec says may be orphaned.
REFERENCES = [
    ("DM_DONVI", "MA_CQ", "DM_COQUAN_BHXH", "MA_CQ"),
    ("NGUOI_LAO_DONG", "MA_DV", "DM_DONVI", "MA_DV"),
    ("HO_SO", "MA_DV", "DM_DONVI", "MA_DV"),
    ("HO_SO", "MA_CQ", "DM_COQUAN_BHXH", "MA_CQ"),
    ("HO_SO_TEP", "ID_HO_SO", "HO_SO", "ID_HO_SO"),
    ("HO_SO_LICH_SU", "ID_HO_SO", "HO_SO", "ID_HO_SO"),
]
UNIQUE = {"HO_SO": ["SO_HO_SO"]}


def _table_expectations(
    engine: Engine, table: TableInfo, by_name: dict[str, TableInfo], notes: list[str]
) -> list[Expectation]:
    import great_expectations.expectations as gxe

    expectations: list[Expectation] = [gxe.ExpectTableRowCountToBeBetween(min_value=0)]  # the count, as observed
    name = table.name.upper()
    if name not in MAPPED_TABLES:
        return expectations  # system and unknown tables: counted, never read
    columns = {c.upper(): c for c in table.column_names}
    skipped = set()

    def column(wanted: str) -> str | None:
        if wanted not in columns:
            skipped.add(wanted)
        return columns.get(wanted)

    for key in table.primary_key:
        expectations += [gxe.ExpectColumnValuesToNotBeNull(column=key), gxe.ExpectColumnValuesToBeUnique(column=key)]
    for wanted in UNIQUE.get(name, []):
        if (actual := column(wanted)) is not None:
            expectations.append(gxe.ExpectColumnValuesToBeUnique(column=actual))
    for wanted in REQUIRED.get(name, []):
        if (actual := column(wanted)) is not None:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=actual))
            if wanted in TEXT_REQUIRED:
                expectations.append(
                    rows_where(
                        engine,
                        sa.func.trim(sa.column(actual)) == "",
                        f"{actual} is not an empty string standing for a value",
                    )
                )
    for wanted, values in VALUE_SETS.get(name, []):
        if (actual := column(wanted)) is not None:
            expectations.append(gxe.ExpectColumnValuesToBeInSet(column=actual, value_set=values))
    if engine.dialect.name in REGEX_DIALECTS:
        for wanted, pattern in FORMATS.get(name, []):
            if (actual := column(wanted)) is not None:
                expectations.append(gxe.ExpectColumnValuesToMatchRegex(column=actual, regex=pattern))
        if name == "DM_DONVI" and (actual := column("MA_SO_THUE")) is not None:
            expectations.append(
                rows_where(engine, tax_code_check_digit_wrong(actual), "tax codes have a valid check digit")
            )
    for child, child_column, parent, parent_column in REFERENCES:
        if child != name or (actual := column(child_column)) is None:
            continue
        parent_table = by_name.get(parent)
        if parent_table is None or parent_column not in {c.upper() for c in parent_table.column_names}:
            notes.append(f"{name}.{child_column}: table {parent} is missing, the reference was not checked")
            continue
        parent_actual = next(c for c in parent_table.table.columns if c.name.upper() == parent_column)
        expectations.append(references(engine, actual, parent_actual, f"{actual} names an existing {parent} row"))
    if skipped:
        notes.append(f"{name}: no column {', '.join(sorted(skipped))} (not checked)")
    if table.columns_not_in_schema:
        notes.append(
            f"{name}: column {', '.join(table.columns_not_in_schema)} is not in the TS24 schema (backed up, not loaded)"
        )
    return expectations


def run_legacy_profile(
    legacy: Engine, *, docs_dir: Path, sample_rows: int | None = None, masking: Masking = MASKED
) -> SuiteResults:
    """Profile every legacy table through one GX Checkpoint; Data Docs go to `docs_dir`.

    Descriptive: `.success` says whether the data is clean, and is never a verdict.
    """
    if sample_rows is not None and sample_rows < 1:
        raise ValueError("sample_rows must be positive")
    tables = discover_tables(legacy)
    by_name = {t.name.upper(): t for t in tables}
    notes: list[str] = []
    if legacy.dialect.name not in REGEX_DIALECTS:
        notes.append(f"{legacy.dialect.name} has no regular expressions: formats were not checked")
    if sample_rows is not None:
        notes.append(f"each table profiled on its first {sample_rows} rows (counts are of the sample)")
    suites = {t.name: _table_expectations(legacy, t, by_name, notes) for t in tables}
    batches = {t.name: TableBatch(t.name, sample_rows) for t in tables}
    return run_suites(
        legacy,
        suites,
        docs_dir=docs_dir,
        kind="legacy",
        run_name="legacy-profile",
        batches=batches,
        notes=notes,
        masking=masking,
    )
