"""mig_flags: the flagged values of the rows a load (or a carry-over) wrote.

The transform flags a value it changed or doubts (transform.verdicts), naming
the field, the legacy original and the value loaded. They are written in the
transaction that writes the rows, and only for rows the target now holds: a
row the load itself refused (a conflict, ...) has a reject instead, and a row
written again (a carry-over) has its flags replaced by those of its new
version.

Example::

    record_flags(conn, result.flags.to_dict("records"), legacy_table="DM_DONVI", site_id="hn-01",
                 run_id=run_id, now=now, skip_keys=refused_by_the_load)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .bookkeeping import flags, rejects
from .merge import upsert  # the dialect's INSERT ... ON CONFLICT

_KEYS_PER_QUERY = 500
_CHANGING = ("run_id", "original_value", "loaded_value", "flagged_at")


def _text(value: Any) -> str | None:
    """As text PostgreSQL can store (no NUL); None for missing values."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value).replace("\x00", "\\x00")


def record_flags(
    conn: Connection,
    records: Iterable[dict[str, Any]],
    *,
    legacy_table: str,
    site_id: str,
    run_id: str,
    now: dt.datetime,
    skip_keys: Collection[str] = (),
) -> int:
    """Write flagged values (transform.verdicts.FLAG_COLUMNS records) except those of `skip_keys`;
    returns how many."""
    rows = [
        {
            "site_id": site_id,
            "legacy_table": legacy_table,
            "legacy_key": str(r["legacy_key"]),
            "flag_code": r["flag_code"],
            "field": r["field"],
            "run_id": run_id,
            "original_value": _text(r.get("original_value")),
            "loaded_value": _text(r.get("loaded_value")),
            "flagged_at": now,
        }
        for r in records
        if str(r["legacy_key"]) not in skip_keys
    ]
    if not rows:
        return 0
    statement = upsert(conn, flags)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(flags.primary_key.columns.keys()), set_={c: statement.excluded[c] for c in _CHANGING}
        ),
        rows,
    )
    return len(rows)


def rejected_now(conn: Connection, *, legacy_table: str, site_id: str, now: dt.datetime) -> set[str]:
    """Legacy keys of this table rejected by the write at `now` (the load's own refusals included)."""
    return set(
        conn.execute(
            sa.select(rejects.c.legacy_key).where(
                rejects.c.site_id == site_id, rejects.c.legacy_table == legacy_table, rejects.c.rejected_at == now
            )
        ).scalars()
    )


def forget_flags(conn: Connection, *, legacy_table: str, site_id: str, keys: Collection[str]) -> None:
    """Drop the flags of `keys` (rows rewritten, or no longer loaded)."""
    keys = sorted(keys)
    for i in range(0, len(keys), _KEYS_PER_QUERY):
        conn.execute(
            flags.delete().where(
                flags.c.site_id == site_id,
                flags.c.legacy_table == legacy_table,
                flags.c.legacy_key.in_(keys[i : i + _KEYS_PER_QUERY]),
            )
        )


def flag_counts(conn: Connection, *, site_id: str, legacy_table: str | None = None) -> dict[str, dict[str, int]]:
    """legacy table -> flag code -> rows flagged (distinct legacy keys), for the site's loaded rows."""
    query = (
        sa.select(flags.c.legacy_table, flags.c.flag_code, sa.func.count(sa.distinct(flags.c.legacy_key)))
        .where(flags.c.site_id == site_id)
        .group_by(flags.c.legacy_table, flags.c.flag_code)
    )
    if legacy_table is not None:
        query = query.where(flags.c.legacy_table == legacy_table)
    counts: dict[str, dict[str, int]] = {}
    for table, code, n in conn.execute(query):
        counts.setdefault(table, {})[code] = int(n)
    return {table: dict(sorted(codes.items())) for table, codes in counts.items()}
