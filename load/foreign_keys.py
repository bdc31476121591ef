"""The new system's foreign keys, proved once per chunk as a set; the per-row checks off where that is allowed.

A dossier file or history row must name a dossier the new system holds
(dossier_files.dossier_id -> dossiers). PostgreSQL checks that row by row: an
internal trigger per inserted row looks its parent up and locks it, some 3 us
a row (docs/performance.md). The load has already checked the same thing as a
set before it writes: load.parent_keys finds each distinct parent through the
crosswalk in the parent table itself and locks it FOR KEY SHARE, as the
trigger would, so no other session can delete it before the chunk commits;
the merge's plan rejects a row whose parent is not there (PARENT_NOT_LOADED).
The per-row triggers would then only repeat a check already proved.

So on PostgreSQL the business rows of such a chunk are written with
`session_replication_role = replica`, the way AWS DMS loads: the role skips
ordinary triggers, the foreign-key checks among them. It is set LOCAL to the
chunk's transaction, and set back right after the business rows: the
bookkeeping after them, every other transaction and every other session are
checked as before, and the constraints themselves never leave the target.

Unique keys are no triggers: the replica role leaves their indexes checking
every row. The merge's plan has rejected, as a set, the rows that would break
one (DUPLICATE_TARGET_KEY, conflicts) before anything is written.

It falls back to the database's per-row checks (the same rows, the same
rejects: the set-based check ran anyway) when
- the role may not set the parameter (a superuser may; on PostgreSQL 15+ also
  a role granted `SET ON PARAMETER session_replication_role`): tried in a
  savepoint, so a refusal leaves the transaction intact, and not tried again
  on that connection;
- the table has a trigger or rule the replica role would silence besides the
  checks of the proved foreign key (the new system's own triggers, a foreign
  key of another column): those must keep running;
- the target is SQLite, whose per-row checks are cheap and local.

Example::

    with per_row_checks_skipped(conn, spec.table, spec.table.c["dossier_id"]) as path:
        conn.execute(insert_business_rows)     # path: "replica", or "per-row: ..." and why
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

REPLICA = "replica"
PER_ROW_SQLITE = "per-row: sqlite"
PER_ROW_NOT_PERMITTED = "per-row: not permitted"
PER_ROW_OTHER_TRIGGERS = "per-row: other triggers"

_ROLE = "session_replication_role"
_REFUSED = "ts24_replication_role_refused"  # Connection.info key: this connection's role may not set it
_INSUFFICIENT_PRIVILEGE = "42501"

# The foreign-key functions PostgreSQL runs, per row, for the referencing side of a key.
_CHECKS = ("RI_FKey_check_ins", "RI_FKey_check_upd")

# Every trigger and rule on the table that fires in the default ('origin') role or only in the replica role.
_TRIGGERS = sa.text(
    """
    SELECT p.proname AS function, t.tgenabled AS enabled, c.contype AS constraint_type,
           c.conrelid = t.tgrelid AS referencing,
           ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k JOIN pg_attribute a
                 ON a.attrelid = c.conrelid AND a.attnum = k) AS columns,
           c.confrelid::regclass::text AS referenced,
           ARRAY(SELECT a.attname::text FROM unnest(c.confkey) k JOIN pg_attribute a
                 ON a.attrelid = c.confrelid AND a.attnum = k) AS referenced_columns
    FROM pg_trigger t
    JOIN pg_proc p ON p.oid = t.tgfoid
    LEFT JOIN pg_constraint c ON c.oid = t.tgconstraint
    WHERE t.tgrelid = CAST(:table AS regclass) AND t.tgenabled IN ('O', 'R')
    UNION ALL
    SELECT 'rule ' || r.rulename, r.ev_enabled, NULL, NULL, NULL, NULL, NULL
    FROM pg_rewrite r
    WHERE r.ev_class = CAST(:table AS regclass) AND r.rulename <> '_RETURN' AND r.ev_enabled IN ('O', 'R')
    """
)


@contextmanager
def per_row_checks_skipped(conn: Connection, table: sa.Table, proved: sa.Column[Any]) -> Iterator[str]:
    """Within: writes of `table` rows whose foreign key `proved` the caller has checked as a set.

    Yields the path taken: REPLICA, or one of the PER_ROW_* paths (the database checks each row).
    """
    if conn.dialect.name != "postgresql":
        yield PER_ROW_SQLITE
        return
    if not _only_proved_checks(conn, table, proved):
        yield PER_ROW_OTHER_TRIGGERS
        return
    previous: str = conn.execute(sa.select(sa.func.current_setting(_ROLE))).scalar_one()
    if previous != REPLICA and not _set_replica(conn):
        yield PER_ROW_NOT_PERMITTED
        return
    yield REPLICA
    # Only after the writes went through: a failed one aborted the transaction, which undoes the SET LOCAL.
    if previous != REPLICA:
        conn.execute(sa.select(sa.func.set_config(_ROLE, previous, True)))


def _set_replica(conn: Connection) -> bool:
    """SET LOCAL the replica role; False (transaction intact) when this role may not."""
    if conn.info.get(_REFUSED):
        return False
    try:
        with conn.begin_nested():  # a refused SET would abort the whole transaction
            conn.execute(sa.select(sa.func.set_config(_ROLE, REPLICA, True)))
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        conn.info[_REFUSED] = True
        return False
    return True


def _only_proved_checks(conn: Connection, table: sa.Table, proved: sa.Column[Any]) -> bool:
    """True when the replica role would silence no trigger or rule of `table` but the checks of `proved`.

    Allowed besides those: the foreign-key triggers of tables that reference this one, which fire
    on a DELETE or on a change of the referenced key, and the merge does neither.
    """
    (foreign_key,) = proved.foreign_keys
    parent = foreign_key.column
    for row in conn.execute(_TRIGGERS, {"table": table.name}).mappings():
        if row["enabled"] != "O" or row["constraint_type"] != "f":
            return False
        if not row["referencing"]:
            if not row["function"].startswith("RI_FKey_"):
                return False
            continue
        proved_check = (
            row["function"] in _CHECKS
            and list(row["columns"]) == [proved.name]
            and row["referenced"] == parent.table.name
            and list(row["referenced_columns"]) == [parent.name]
        )
        if not proved_check:
            return False
    return True
