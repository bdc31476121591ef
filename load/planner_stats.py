"""Keep PostgreSQL's planner statistics current on the tables a load grows.

The merge joins each staged chunk with the crosswalk and the
business table. Those tables grow by the whole site within one load, faster
than autovacuum re-analyzes them: with statistics that still say "one row",
PostgreSQL picks a nested loop over a materialized scan, and a 50,000-row
chunk of history took two minutes instead of a fraction of a second. So the
load re-analyzes a table itself whenever it has grown by half since the last
time (a handful of ANALYZEs per table, each a sample of at most 30,000
rows), in a short transaction of its own. SQLite plans from its indexes
without statistics and needs none of this.

Example::

    stats = PlannerStats(engine)
    stats.refresh(["mig_crosswalk", "units"])     # before a chunk
    stats.grew(["mig_crosswalk", "units"], 50_000)  # after it
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlalchemy.engine import Engine

from .copy_postgres import analyze

# Re-analyze once a table has grown by this share of its size at the last ANALYZE ...
_GROWTH = 0.5
# ... and by at least this many rows (small tables are planned well enough).
_MIN_ROWS = 5_000


class PlannerStats:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self._rows_at_analyze: dict[str, float] = {}
        self._grown: dict[str, int] = {}

    def refresh(self, table_names: Iterable[str]) -> None:
        """ANALYZE the tables never analyzed by this load, or grown by half since."""
        if not self.enabled:
            return
        due = [
            name
            for name in table_names
            if name not in self._rows_at_analyze
            or self._grown.get(name, 0) >= max(_MIN_ROWS, _GROWTH * self._rows_at_analyze[name])
        ]
        if not due:
            return
        with self.engine.begin() as conn:
            # What the merge's plans need is the size of each (site, table) slice: a small sample
            # finds those few values as well as the default 30,000-row one, in a tenth of the time.
            conn.execute(sa.text("SET LOCAL default_statistics_target = 10"))
            for name in due:
                analyze(conn, sa.table(name))
                estimate = conn.execute(
                    sa.select(sa.column("reltuples"))
                    .select_from(sa.table("pg_class"))
                    .where(sa.column("oid") == sa.cast(sa.literal(name), REGCLASS))
                ).scalar()
                self._rows_at_analyze[name] = max(float(estimate or 0), 0.0)
                self._grown[name] = 0

    def grew(self, table_names: Iterable[str], rows: int) -> None:
        for name in table_names:
            self._grown[name] = self._grown.get(name, 0) + rows
