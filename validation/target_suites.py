"""The suites the loaded target must pass: keys, identifier formats, value sets, date ranges, references.

Target tables are validated whole (every site's rows and the new portal's):
keys must be unique across all of them, and a reference must resolve
whoever wrote the row. Every expectation here must hold after a correct load
of any TS24 site; a failure fails the validation verdict.

Rows the transform loaded with a repaired or cleared value carry the reason in
`dq_flags` (transform/reason_codes.py); the expectations hold for them too,
since a cleared value is NULL and GX's column expectations skip NULLs.

Example::

    results = run_target_suites(engine, site_id="hn-01", docs_dir=Path("work/sites/hn-01/report/gx"))
    results.success, results.suite("units").failed
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from load import target_schema as ts
from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.personal_data import MASKED, Masking

from .gx_runner import SuiteResults, run_suites
from .sql_checks import references as sql_references
from .sql_checks import rows_where, tax_code_check_digit_wrong

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation, UnexpectedRowsExpectation

# Vietnam Social Security was founded in 1995: no dossier, history entry or unit
# registration is older. Birth dates go back to 1900 (the transform rejects older ones).
AGENCY_FOUNDED = dt.date(1995, 1, 1)
AGENCY_FOUNDED_AT = dt.datetime(1995, 1, 1)  # GX compares like with like: datetimes for timestamp columns
OLDEST_BIRTH_DATE = dt.date(1900, 1, 1)
SOURCES = ["ts24", "portal"]
TRANSACTION_MODES = ["portal", "network_unsigned", "ivan"]
OFFICE_LEVELS = ["province", "district"]
BIRTH_DATE_PRECISIONS = ["day", "month", "year"]
SEXES = ["M", "F"]
FILE_TYPES = ("xml", "pdf")
TARGET_TABLES = ("offices", "units", "insured_persons", "dossiers", "dossier_files", "dossier_history")


def _key(column: str) -> list[Expectation]:
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnValuesToNotBeNull(column=column), gxe.ExpectColumnValuesToBeUnique(column=column)]


def target_expectations(engine: Engine, *, as_of: dt.datetime) -> dict[str, list[Expectation]]:
    """Table -> GX expectations; `as_of` bounds dates from above (nothing happens in the future)."""
    import great_expectations.expectations as gxe

    not_null = gxe.ExpectColumnValuesToNotBeNull
    in_set = gxe.ExpectColumnValuesToBeInSet
    regex = gxe.ExpectColumnValuesToMatchRegex
    between = gxe.ExpectColumnValuesToBeBetween
    today = as_of.date()
    latest = as_of + dt.timedelta(days=1)  # clocks of the legacy servers may run a little ahead
    statuses = list(ts.DOSSIER_STATUSES)
    office_code, unit_code = ts.offices.c.office_code, ts.units.c.unit_code
    dossier_id = ts.dossiers.c.dossier_id

    def col(name: str) -> sa.ColumnClause[Any]:
        return sa.column(name)

    def references(column: str, parent: sa.Column[Any], description: str) -> UnexpectedRowsExpectation:
        # Only rows the migration wrote are judged: a row filed on the new portal may name a unit
        # or office that another site's migration has not brought over yet, and the portal's own
        # integrity is not this migration's verdict to give.
        return sql_references(engine, column, parent, description, only=col("source") == "ts24")

    return {
        "offices": [
            *_key("office_code"),
            regex(column="office_code", regex=r"^[0-9]{2}([0-9]{2})?$"),
            not_null(column="name"),
            not_null(column="level"),
            in_set(column="level", value_set=OFFICE_LEVELS),
            regex(column="province_code", regex=r"^[0-9]{2}$"),
            rows_where(
                engine,
                sa.or_(
                    sa.and_(col("level") == "province", sa.func.length(col("office_code")) != 2),
                    sa.and_(col("level") == "district", sa.func.length(col("office_code")) != 4),
                ),
                "a province office has a 2-digit code, a district office a 4-digit one",
            ),
        ],
        "units": [
            *_key("unit_id"),
            *_key("unit_code"),
            regex(column="unit_code", regex=r"^[A-Z0-9]{1,15}$"),
            not_null(column="name"),
            regex(column="tax_code", regex=r"^[0-9]{10}(-[0-9]{3})?$"),
            rows_where(engine, tax_code_check_digit_wrong("tax_code"), "tax codes have a valid check digit"),
            not_null(column="transaction_mode"),
            in_set(column="transaction_mode", value_set=TRANSACTION_MODES),
            regex(column="ivan_code", regex=r"^[0-9]{5}$"),
            references("office_code", office_code, "the managing office exists"),
            not_null(column="active"),
            between(column="registered_on", min_value=AGENCY_FOUNDED, max_value=today),
            not_null(column="source"),
            in_set(column="source", value_set=SOURCES),
            not_null(column="updated_at"),
        ],
        "insured_persons": [
            *_key("person_id"),
            *_key("social_insurance_no"),
            regex(column="social_insurance_no", regex=r"^[0-9]{10}$"),
            not_null(column="full_name"),
            between(column="birth_date", min_value=OLDEST_BIRTH_DATE, max_value=today),
            in_set(column="birth_date_precision", value_set=BIRTH_DATE_PRECISIONS),
            in_set(column="sex", value_set=SEXES),
            regex(column="citizen_id", regex=r"^([0-9]{9}|[0-9]{12})$"),
            references("unit_code", unit_code, "the employer unit exists"),
            not_null(column="source"),
            in_set(column="source", value_set=SOURCES),
        ],
        "dossiers": [
            *_key("dossier_id"),
            *_key("dossier_no"),
            not_null(column="unit_code"),
            references("unit_code", unit_code, "the submitting unit exists"),
            not_null(column="procedure_code"),
            regex(column="declaration_period", regex=r"^[0-9]{4}-(0[1-9]|1[0-2])$"),
            not_null(column="submitted_at"),
            between(column="submitted_at", min_value=AGENCY_FOUNDED_AT, max_value=latest),
            between(column="received_at", min_value=AGENCY_FOUNDED_AT, max_value=latest),
            between(column="returned_at", min_value=AGENCY_FOUNDED_AT, max_value=latest),
            not_null(column="status"),
            in_set(column="status", value_set=statuses),
            references("office_code", office_code, "the receiving office exists"),
            not_null(column="source"),
            in_set(column="source", value_set=SOURCES),
        ],
        "dossier_files": [
            *_key("file_id"),
            not_null(column="dossier_id"),
            references("dossier_id", dossier_id, "the file's dossier exists"),
            not_null(column="file_name"),
            regex(column="md5", regex=r"^[0-9a-f]{32}$"),
            regex(column="sha256", regex=r"^[0-9a-f]{64}$"),
            between(column="size_bytes", min_value=0),
            rows_where(
                engine,
                sa.and_(
                    col("file_type").not_in(FILE_TYPES),
                    sa.or_(col("dq_flags").is_(None), col("dq_flags").not_like("%FILE_TYPE_UNKNOWN%")),
                ),
                "file types are xml or pdf, or flagged FILE_TYPE_UNKNOWN",
            ),
            not_null(column="source"),
            in_set(column="source", value_set=SOURCES),
        ],
        "dossier_history": [
            *_key("history_id"),
            not_null(column="dossier_id"),
            references("dossier_id", dossier_id, "the history entry's dossier exists"),
            not_null(column="occurred_at"),
            between(column="occurred_at", min_value=AGENCY_FOUNDED_AT, max_value=latest),
            not_null(column="status_to"),
            in_set(column="status_to", value_set=statuses),
            in_set(column="status_from", value_set=statuses),
            not_null(column="source"),
            in_set(column="source", value_set=SOURCES),
        ],
    }


def run_target_suites(
    target: Engine, *, site_id: str, docs_dir: Path, as_of: dt.datetime | None = None, masking: Masking = MASKED
) -> SuiteResults:
    """Validate the loaded target through one GX Checkpoint; Data Docs go to `docs_dir`.

    `.success` is the verdict: every expectation must hold. `as_of` (default: now, UTC)
    is the latest moment a date may show.
    """
    missing = [t for t in TARGET_TABLES if not sa.inspect(target).has_table(t)]
    if missing:
        raise UsageError(f"the target database has no table {missing[0]!r}: nothing was loaded into it yet")
    as_of = as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return run_suites(
        target,
        target_expectations(target, as_of=as_of),
        docs_dir=docs_dir,
        kind="target",
        run_name=site_id,
        notes=["target tables are validated whole: every site's rows and the new portal's"],
        masking=masking,
    )
