"""The new keys of a chunk's parent rows, looked up in the crosswalk once per distinct parent.

A dossier file or history row names its dossier by the dossier's legacy key
(`legacy_dossier_id`); the new row needs the dossier's new key. The crosswalk
holds it for every dossier this site loaded, in this run or an earlier one. A
history chunk names each dossier about four times: asking the crosswalk once
per distinct key, in one query, costs a quarter of the index probes that a
per-row join did, and leaves the merge's decision (load, or reject with
PARENT_NOT_LOADED) a plain test for NULL.

The answer is the foreign key checked as a set: a parent counts only when the
parent table still holds its row (the new system may have deleted a dossier
the crosswalk remembers), and on PostgreSQL the rows found are locked FOR KEY
SHARE, as the per-row foreign-key check locks them, so that no other session
deletes one before the chunk commits. That proof is what lets load.foreign_keys
skip the per-row checks: a row it passes cannot break the key.

Example::

    ids = parent_ids(conn, spec.parent, spec.table.c["dossier_id"], site_id="hn-01",
                     legacy_keys=staged.column("legacy_dossier_id"))
    # pyarrow int64 array, None where the dossier was not loaded
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.engine import Connection

from .bookkeeping import crosswalk
from .target_map import Parent


def parent_ids(
    conn: Connection, parent: Parent, column: sa.Column[Any], *, site_id: str, legacy_keys: pa.Array | pa.ChunkedArray
) -> pa.Array:
    """The new key of each row's parent (NULL where that parent was not loaded, or is gone), typed like `column`.

    `column` is the business table's foreign key to the parent.
    """
    if isinstance(legacy_keys, pa.ChunkedArray):
        legacy_keys = legacy_keys.combine_chunks()
    wanted = pc.unique(legacy_keys).drop_null().to_pylist()
    (foreign_key,) = column.foreign_keys
    found_legacy, found_target = _crosswalked(conn, parent, foreign_key.column, site_id, wanted) if wanted else ([], [])
    targets = pa.array(found_target, pa.large_string())
    if isinstance(column.type, sa.Integer):
        targets = targets.cast(pa.int64())
    # Where each row's parent is among those found (NULL: not found), then its new key: all in Arrow.
    positions = pc.index_in(legacy_keys, value_set=pa.array(found_legacy, legacy_keys.type))
    return targets.take(positions)


def _crosswalked(
    conn: Connection, parent: Parent, parent_key: sa.Column[Any], site_id: str, legacy_keys: list[str]
) -> tuple[list[str], list[str]]:
    """The legacy keys among `legacy_keys` that the crosswalk holds and whose row `parent_key`'s table
    holds, and their target keys; on PostgreSQL those parent rows are locked FOR KEY SHARE."""
    keys_json = sa.bindparam("keys", json.dumps(legacy_keys), type_=sa.Text)
    of_site_table = [crosswalk.c.site_id == site_id, crosswalk.c.legacy_table == parent.legacy_table]
    mine = [*of_site_table, crosswalk.c.target_table == parent.target_table]
    # The crosswalk's text key cast to the parent key's type (never the key to text): each probes the index.
    held = crosswalk.join(parent_key.table, parent_key == sa.cast(crosswalk.c.target_key, parent_key.type))
    if conn.dialect.name == "postgresql":
        # The keys as one JSON text (a parameter the same for every chunk, cheap to send) made an
        # array, so that each key probes the index; the answer comes back as two arrays, not rows.
        wanted = sa.func.array(sa.select(sa.func.json_array_elements_text(sa.cast(keys_json, JSON))).scalar_subquery())
        found_rows = (
            sa.select(crosswalk.c.legacy_key, crosswalk.c.target_key)
            .select_from(held)
            .where(*mine, crosswalk.c.legacy_key == sa.any_(wanted))
            .with_for_update(read=True, key_share=True, of=parent_key.table)
            .subquery("found")
        )
        found = sa.select(sa.func.array_agg(found_rows.c.legacy_key), sa.func.array_agg(found_rows.c.target_key))
        legacy, target = conn.execute(found).one()
        return list(legacy or []), list(target or [])  # (psycopg hands arrays over as lists)
    wanted_sqlite = crosswalk.c.legacy_key.in_(
        sa.select(sa.column("value", sa.String)).select_from(sa.func.json_each(keys_json))
    )
    # SQLite plans without statistics: offered `target_table = ?`, it walks the target-row index
    # over every row of the table instead of probing the primary key per wanted legacy key.
    # `target_table || ''` still checks the table but no index can serve it.
    mine_sqlite = [*of_site_table, crosswalk.c.target_table.concat("") == parent.target_table]
    rows = conn.execute(
        sa.select(crosswalk.c.legacy_key, crosswalk.c.target_key).select_from(held).where(*mine_sqlite, wanted_sqlite)
    ).all()
    return [r[0] for r in rows], [r[1] for r in rows]
