"""Schema step 4: the lineage table merged into the crosswalk, for targets loaded before it.

Until step 4 each loaded legacy row cost the target two bookkeeping rows: a crosswalk row
(legacy key -> new key) and a lineage row (new key -> legacy key, run, row hashes). Both
said the same thing from either end, and each was a heap row and an index entry more to
write per loaded row. Now `mig_crosswalk` carries the lineage columns and an index on the
target row, and `mig_lineage` goes away. What an existing target holds is carried over:

1. the lineage columns are added to the crosswalk (NULL for now);
2. each crosswalk row takes the lineage of the same legacy key and target row;
3. a lineage row whose legacy key has no crosswalk row at all (the crosswalk row was lost)
   becomes one, the newest per legacy key;
4. a crosswalk row left without lineage is removed: its target row was taken over by
   another legacy key (a reused code or key), so the accounting never counted it as
   loaded, and keeping it would send a re-run of its legacy key into the other key's row;
5. lineage rows not carried over (a row of the new system written again since, under
   another key: its old lineage is superseded) are kept, in `mig_lineage_superseded`,
   so that nothing an auditor could have read before is lost;
6. the target index is created, unique: a target row has one legacy row at most.

Run inside the step's transaction: all of it or nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .bookkeeping import LINEAGE_COLUMNS, crosswalk

SUPERSEDED_TABLE = "mig_lineage_superseded"

# mig_lineage as schema steps 1-3 made it: read here, and only here.
_old = sa.MetaData()
lineage_v3 = sa.Table(
    "mig_lineage",
    _old,
    sa.Column("target_table", sa.String(64), primary_key=True),
    sa.Column("target_key", sa.String(64), primary_key=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("legacy_table", sa.String(64), nullable=False),
    sa.Column("legacy_key", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("legacy_row_hash", sa.String(64), nullable=False),
    sa.Column("row_md5", sa.String(32), nullable=False),
    sa.Column("loaded_at", sa.DateTime, nullable=False),
    sa.Column("dq_flags", sa.Text),
)


def merge_lineage_into_crosswalk(conn: Connection) -> None:
    inspector = sa.inspect(conn)
    present = {c["name"] for c in inspector.get_columns(crosswalk.name)}
    for name in LINEAGE_COLUMNS:
        if name not in present:
            column_type = crosswalk.c[name].type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {crosswalk.name} ADD COLUMN {name} {column_type}"))
    if inspector.has_table(lineage_v3.name):
        _carry_over(conn)
    # Made by step 1 on a database created after step 4 existed; otherwise made here.
    for index in crosswalk.indexes:
        index.create(conn, checkfirst=True)


def _carry_over(conn: Connection) -> None:
    c, old = crosswalk, lineage_v3
    same_legacy_row = sa.and_(
        old.c.site_id == c.c.site_id, old.c.legacy_table == c.c.legacy_table, old.c.legacy_key == c.c.legacy_key
    )
    same_target_row = sa.and_(old.c.target_table == c.c.target_table, old.c.target_key == c.c.target_key)
    # 2. A crosswalk row and the lineage of its own target row.
    conn.execute(
        c.update().where(same_legacy_row, same_target_row).values({name: old.c[name] for name in LINEAGE_COLUMNS})
    )
    # 4. Before 3: a stale crosswalk row may claim the target row that 3 gives its owner.
    conn.execute(c.delete().where(c.c.run_id.is_(None)))
    # 3. Lineage of a legacy key the crosswalk lost: the newest per legacy key.
    newest = sa.func.row_number().over(
        partition_by=[old.c.site_id, old.c.legacy_table, old.c.legacy_key],
        order_by=[old.c.loaded_at.desc(), old.c.target_key.desc()],
    )
    ranked = (
        sa.select(old, newest.label("newest"))
        .where(~sa.exists().where(same_legacy_row))
        .where(~sa.exists().where(same_target_row))
        .subquery("ranked")
    )
    columns = ["site_id", "legacy_table", "legacy_key", "target_table", "target_key", *LINEAGE_COLUMNS]
    conn.execute(
        c.insert().from_select(columns, sa.select(*[ranked.c[n] for n in columns]).where(ranked.c.newest == 1))
    )
    # 5. What is left of the lineage was not carried over: keep it apart, or drop an empty table.
    conn.execute(old.delete().where(sa.exists().where(same_legacy_row, same_target_row)))
    if conn.execute(sa.select(sa.func.count()).select_from(old)).scalar_one():
        conn.execute(sa.text(f"ALTER TABLE {old.name} RENAME TO {SUPERSEDED_TABLE}"))
    else:
        old.drop(conn)
