"""Accounting: every legacy row is backed up, and every mapped row is loaded or rejected.

Invariant 1 of the design, per legacy table and run:

    source rows = backed-up rows
    source rows = loaded + rejected          (mapped tables; conflicts are rejects)

The figures come from the stages that produced them (extract/backup manifest,
load summary), so the report shows the very numbers the check holds them to.
`figures_from_stages` assembles them from the load summary and the backup
result; `recorded_counts` reads the same figures back from the target's
bookkeeping (crosswalk, rejects, conflicts) so that a summary and the database
can be held against each other.

Example::

    rows = accounting_check({"HO_SO": {"source": 1200, "backed_up": 1200, "loaded": 1187,
                                       "rejected": 13},
                             "HT_NHAT_KY": {"source": 300, "backed_up": 300}})
    [r.ok for r in rows]            # [True, True]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from load.bookkeeping import conflicts, crosswalk, rejects
from ts24_migrate.core.errors import UsageError

FIGURE_KEYS = ("source", "backed_up", "loaded", "rejected", "conflicts", "source_fingerprint", "backup_fingerprint")


@dataclass(frozen=True)
class AccountingRow:
    table: str  # legacy table name
    source: int
    backed_up: int | None
    loaded: int | None  # None: the table is not mapped (backed up and purged, never loaded)
    rejected: int | None
    conflicts: int | None  # part of `rejected`
    problems: tuple[str, ...]

    @property
    def mapped(self) -> bool:
        return self.loaded is not None or self.rejected is not None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "source": self.source,
            "backed_up": self.backed_up,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "conflicts": self.conflicts,
            "mapped": self.mapped,
            "ok": self.ok,
            "problems": list(self.problems),
        }


def _count(table: str, figures: Mapping[str, Any], key: str) -> int | None:
    value = figures.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"accounting figures of {table}: {key} must be a count (a whole number >= 0), not {value!r}")
    return value


def _table_row(
    table: str, figures: Mapping[str, Any], recorded: Mapping[str, Mapping[str, int]] | None
) -> AccountingRow:
    unknown = sorted(set(figures) - set(FIGURE_KEYS))
    if unknown:
        raise UsageError(f"accounting figures of {table}: unknown key {unknown[0]!r} (known: {', '.join(FIGURE_KEYS)})")
    source = _count(table, figures, "source")
    if source is None:
        raise UsageError(f"accounting figures of {table}: 'source' (rows read from the legacy table) is required")
    backed_up, loaded, rejected = (_count(table, figures, k) for k in ("backed_up", "loaded", "rejected"))
    conflicted = _count(table, figures, "conflicts")
    problems = []
    if backed_up is None:
        problems.append("no backup figure: every table must be backed up")
    elif backed_up != source:
        problems.append(f"backed up {backed_up} rows of {source} read from the source")
    source_fp, backup_fp = figures.get("source_fingerprint"), figures.get("backup_fingerprint")
    if source_fp and backup_fp and source_fp != backup_fp:
        problems.append("the backup's fingerprint differs from the source's")
    if loaded is not None or rejected is not None:
        if loaded is None or rejected is None:
            problems.append("a mapped table needs both a loaded and a rejected figure")
        elif loaded + rejected != source:
            gap = source - loaded - rejected
            problems.append(
                f"loaded {loaded} + rejected {rejected} = {loaded + rejected}, not the {source} "
                f"source rows ({abs(gap)} {'unaccounted' if gap > 0 else 'too many'})"
            )
        if conflicted is not None and rejected is not None and conflicted > rejected:
            problems.append(f"{conflicted} conflicts but only {rejected} rejects (conflicts are rejects)")
    if recorded is not None and (loaded is not None or rejected is not None):
        book = recorded.get(table, {})
        for key, figure in (("loaded", loaded), ("rejected", rejected), ("conflicts", conflicted)):
            in_database = book.get(key, 0)
            if figure is not None and figure != in_database:
                problems.append(f"{key} {figure} in the figures, {in_database} in the target's bookkeeping")
    return AccountingRow(table, source, backed_up, loaded, rejected, conflicted, tuple(problems))


def accounting_check(
    figures: Mapping[str, Mapping[str, Any]], *, recorded: Mapping[str, Mapping[str, int]] | None = None
) -> list[AccountingRow]:
    """One row per legacy table (sorted by name); `ok` when every row adds up.

    figures: legacy table -> {"source", "backed_up", and for a mapped table "loaded" and
    "rejected"; optionally "conflicts", "source_fingerprint", "backup_fingerprint"}.
    recorded: `recorded_counts(...)`, to hold the figures against the target's bookkeeping.
    """
    if not isinstance(figures, Mapping):
        raise UsageError("accounting figures must map each legacy table to its figures")
    return [_table_row(table, figures[table], recorded) for table in sorted(figures)]


def figures_from_stages(
    load_tables: Mapping[str, Mapping[str, Any]], backup_tables: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The accounting figures, taken as the stages reported them.

    load_tables: `LoadSummary.tables` (source_rows, loaded, rejected, conflicts, source_fingerprint).
    backup_tables: `BackupResult.table_figures()` (rows, fingerprint, count_at_start).
    A table the load did not read (system, unmapped) counts as its source the rows the backup
    saw in it when it started; a mapped table the backup lacks is reported, not guessed.
    """
    figures: dict[str, dict[str, Any]] = {}
    for table in sorted(set(load_tables) | set(backup_tables)):
        loaded, backed = load_tables.get(table), backup_tables.get(table)
        row: dict[str, Any] = {}
        if loaded is not None:
            row.update(
                source=loaded["source_rows"],
                loaded=loaded["loaded"],
                rejected=loaded["rejected"],
                conflicts=loaded.get("conflicts"),
                source_fingerprint=loaded.get("source_fingerprint"),
            )
        elif backed is not None:
            row["source"] = backed.get("count_at_start", backed["rows"])
        if backed is not None:
            row.update(backed_up=backed["rows"], backup_fingerprint=backed.get("fingerprint"))
        figures[table] = row
    return figures


def recorded_counts(target: Engine, *, site_id: str) -> dict[str, dict[str, int]]:
    """Per legacy table, what the target's bookkeeping holds for a site: loaded, rejected, conflicts."""
    found: dict[str, dict[str, int]] = {}
    queries = {
        "loaded": sa.select(crosswalk.c.legacy_table, sa.func.count())
        .where(crosswalk.c.site_id == site_id)
        .group_by(crosswalk.c.legacy_table),
        "rejected": sa.select(rejects.c.legacy_table, sa.func.count())
        .where(rejects.c.site_id == site_id)
        .group_by(rejects.c.legacy_table),
        "conflicts": sa.select(conflicts.c.legacy_table, sa.func.count())
        .where(conflicts.c.site_id == site_id)
        .group_by(conflicts.c.legacy_table),
    }
    with target.connect() as conn:
        for figure, query in queries.items():
            for table, count in conn.execute(query):
                found.setdefault(table, {"loaded": 0, "rejected": 0, "conflicts": 0})[figure] = int(count)
    return found
