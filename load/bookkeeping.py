"""The migration's own bookkeeping in the target database, apart from business tables.

- mig_crosswalk: one row per loaded legacy row: its legacy key -> its new key, and its
                 lineage: the run that wrote it, the legacy row hash, and the row hash the
                 target computed when it was written (load.row_hash), which parity
                 compares with the live table (until schema step 4, the lineage was a
                 table of its own, mig_lineage)
- mig_rejects:   every legacy row not loaded, with reason code, field and value
- mig_flags:     every value of a loaded row that carries a data-quality flag: the
                 field, the legacy original and the value loaded (the row's codes are
                 also in its crosswalk row's dq_flags)
- mig_conflicts: rows the new system changed after cut-over, left untouched
- mig_load_ledger: durable chunks; a re-run skips a chunk recorded as done
- mig_load_tables: tables whose load finished, with the fingerprint of all rows read
- mig_schema_version: which schema steps (load.schema_version) this database has

Names are prefixed `mig_` so that they never mix with the new system's tables
(SQLite has no schemas).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

crosswalk = sa.Table(
    "mig_crosswalk",
    metadata,
    # One row per loaded legacy row: where it went (the crosswalk) and what was written (its lineage).
    # One table, not two: each loaded row costs the target one bookkeeping row (two index entries).
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("legacy_table", sa.String(64), primary_key=True),
    sa.Column("legacy_key", sa.String(200), primary_key=True),
    sa.Column("target_table", sa.String(64), nullable=False),
    sa.Column("target_key", sa.String(64), nullable=False),
    # The lineage columns are NULL-able in the database only because schema step 4 adds them to
    # existing crosswalks (ALTER TABLE ... ADD COLUMN); the merge always writes them, and step 4
    # removes every row it cannot fill (a legacy key whose target row another key took over).
    sa.Column("run_id", sa.String(36)),
    sa.Column("legacy_row_hash", sa.String(64)),  # ts24_migrate.core.rows.fingerprint.row_digest, hex
    sa.Column("row_md5", sa.String(32)),  # load.row_hash.row_md5 of the row as written
    sa.Column("loaded_at", sa.DateTime),
    # Data-quality flags of the row as loaded; kept here too because not every
    # business table has a dq_flags column (offices, dossier_history).
    sa.Column("dq_flags", sa.Text),
    # "Which legacy row is this target row": parity's key ranges, the merge's owner of a natural
    # key. Unique: a target row has one legacy row at most.
    sa.Index("ux_mig_crosswalk_target_row", "target_table", "target_key", unique=True),
)

LINEAGE_COLUMNS = ("run_id", "legacy_row_hash", "row_md5", "loaded_at", "dq_flags")

rejects = sa.Table(
    "mig_rejects",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("legacy_table", sa.String(64), primary_key=True),
    sa.Column("legacy_key", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("reason_code", sa.String(48), nullable=False),
    sa.Column("field", sa.String(64)),
    sa.Column("original_value", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("rejected_at", sa.DateTime, nullable=False),
)

flags = sa.Table(
    "mig_flags",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("legacy_table", sa.String(64), primary_key=True),
    sa.Column("legacy_key", sa.String(200), primary_key=True),
    sa.Column("flag_code", sa.String(48), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),  # the legacy column
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("original_value", sa.Text),  # as the legacy row held it (bounded, see transform.normalize.display)
    sa.Column("loaded_value", sa.Text),  # as the new system received it; NULL when cleared
    sa.Column("flagged_at", sa.DateTime, nullable=False),
)

conflicts = sa.Table(
    "mig_conflicts",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("legacy_table", sa.String(64), primary_key=True),
    sa.Column("legacy_key", sa.String(200), primary_key=True),
    sa.Column("target_table", sa.String(64), nullable=False),
    sa.Column("target_key", sa.String(64)),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detected_at", sa.DateTime, nullable=False),
)

load_ledger = sa.Table(
    "mig_load_ledger",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("legacy_table", sa.String(64), primary_key=True),
    sa.Column("chunk_no", sa.Integer, primary_key=True),
    sa.Column("first_key", sa.String(200)),
    sa.Column("last_key", sa.String(200)),
    sa.Column("rows_in", sa.Integer, nullable=False),
    sa.Column("loaded", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("conflicts", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("done_at", sa.DateTime, nullable=False),
    # ts24_migrate.core.rows.fingerprint.TableFingerprint of the legacy rows of this chunk, as read:
    # merged over the chunks it gives the table's fingerprint even after a resume.
    sa.Column("fingerprint", sa.Text),
    # JSON list of the last chunk row's legacy key values, typed: a resumed read
    # starts after it (keyset), so chunk boundaries stay those of an uninterrupted run.
    sa.Column("resume_after", sa.Text),
)

load_tables = sa.Table(
    "mig_load_tables",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("legacy_table", sa.String(64), primary_key=True),
    sa.Column("target_table", sa.String(64), nullable=False),
    sa.Column("source_fingerprint", sa.Text, nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("completed_at", sa.DateTime, nullable=False),
)

schema_version = sa.Table(
    "mig_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("tool_version", sa.String(32), nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

BOOKKEEPING_TABLES = tuple(metadata.tables)


def create_bookkeeping_tables(bind: Engine | Connection) -> None:
    metadata.create_all(bind, checkfirst=True)
