"""The new system's business tables, as far as the project loads them.

English names; Unicode NFC text; real dates; mapped statuses. `source` tells
whether a row came from TS24 (`ts24`) or was filed on the new portal
(`portal`); `updated_at` is what the conflict rule compares with the cut-over.
The migration's own bookkeeping (runs, lineage, crosswalk, rejects, ledger)
lives apart from these tables (see load.bookkeeping).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

offices = sa.Table(
    "offices",
    metadata,
    sa.Column("office_code", sa.String(10), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("level", sa.String(10), nullable=False),  # province | district
    sa.Column("province_code", sa.String(2)),
)

units = sa.Table(
    "units",
    metadata,
    sa.Column("unit_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("unit_code", sa.String(15), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("tax_code", sa.String(14)),
    sa.Column("address", sa.Text),
    sa.Column("office_code", sa.String(10)),
    sa.Column("contact_name", sa.Text),
    sa.Column("phone", sa.String(30)),
    sa.Column("email", sa.String(100)),
    # portal (mode 1), network_unsigned (mode 2), ivan (mode 3)
    sa.Column("transaction_mode", sa.String(20), nullable=False),
    sa.Column("ivan_code", sa.String(5)),
    sa.Column("cert_serial", sa.String(64)),
    sa.Column("cert_valid_from", sa.DateTime),
    sa.Column("cert_valid_to", sa.DateTime),
    sa.Column("registered_on", sa.Date),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("dq_flags", sa.Text),  # data-quality flags, ';'-separated, for rows loaded with a defect
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

insured_persons = sa.Table(
    "insured_persons",
    metadata,
    sa.Column("person_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("social_insurance_no", sa.String(10), nullable=False, unique=True),
    sa.Column("full_name", sa.Text, nullable=False),
    sa.Column("birth_date", sa.Date),
    sa.Column("birth_date_precision", sa.String(5)),  # day | month | year
    sa.Column("sex", sa.String(1)),  # M | F
    sa.Column("citizen_id", sa.String(12)),
    sa.Column("unit_code", sa.String(15)),
    sa.Column("dq_flags", sa.Text),
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

DOSSIER_STATUSES = ("submitted", "received", "processing", "supplement_requested", "done", "refused", "cancelled")

dossiers = sa.Table(
    "dossiers",
    metadata,
    sa.Column("dossier_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("dossier_no", sa.String(30), nullable=False, unique=True),
    sa.Column("unit_code", sa.String(15), nullable=False),
    sa.Column("procedure_code", sa.String(10), nullable=False),
    sa.Column("declaration_period", sa.String(7)),  # yyyy-mm
    sa.Column("submitted_at", sa.DateTime, nullable=False),
    sa.Column("received_at", sa.DateTime),
    sa.Column("due_date", sa.Date),
    sa.Column("returned_at", sa.DateTime),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("office_code", sa.String(10)),
    sa.Column("officer", sa.String(50)),
    sa.Column("result_no", sa.String(30)),
    sa.Column("notes", sa.Text),
    sa.Column("dq_flags", sa.Text),
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

dossier_files = sa.Table(
    "dossier_files",
    metadata,
    sa.Column("file_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("dossier_id", _ID, sa.ForeignKey("dossiers.dossier_id"), nullable=False),
    sa.Column("form_code", sa.String(20)),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("file_type", sa.String(10)),
    sa.Column("content", sa.LargeBinary),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("md5", sa.String(32)),
    sa.Column("sha256", sa.String(64)),
    sa.Column("dq_flags", sa.Text),
    sa.Column("source", sa.String(10), nullable=False),
)

dossier_history = sa.Table(
    "dossier_history",
    metadata,
    sa.Column("history_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("dossier_id", _ID, sa.ForeignKey("dossiers.dossier_id"), nullable=False),
    sa.Column("occurred_at", sa.DateTime, nullable=False),
    sa.Column("status_from", sa.String(24)),
    sa.Column("status_to", sa.String(24), nullable=False),
    sa.Column("actor", sa.String(50)),
    sa.Column("note", sa.Text),
    sa.Column("source", sa.String(10), nullable=False),
)

# Form 01/ĐK-GĐ re-registrations filed on the new portal (never written by the migration).
re_registrations = sa.Table(
    "re_registrations",
    metadata,
    sa.Column("registration_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("unit_code", sa.String(15), nullable=False),
    sa.Column("tax_code", sa.String(14)),
    sa.Column("filed_on", sa.Date, nullable=False),
    sa.Column("transaction_mode", sa.String(20), nullable=False),
    sa.Column("form", sa.String(20), nullable=False, server_default="01/ĐK-GĐ"),
)

BUSINESS_TABLES = (
    "offices",
    "units",
    "insured_persons",
    "dossiers",
    "dossier_files",
    "dossier_history",
    "re_registrations",
)


def create_business_tables(bind: Engine | Connection) -> None:
    """Create the new system's tables if missing (idempotent)."""
    metadata.create_all(bind, checkfirst=True)
