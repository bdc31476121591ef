"""The generated world: its clock, its offices, its sizes, its random streams.

Everything is a function of (seed, scale, cutover, site, office): the world's
"now" is fixed at cut-over + 30 days rather than read from the machine's
clock, so two runs with the same arguments write identical data.

Each table draws from its own random stream (`World.rng("HO_SO")`), seeded
from a string: Python hashes string seeds with SHA-512, so streams do not
depend on PYTHONHASHSEED and adding a draw to one table never shifts another.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from functools import cached_property

WORLD_NOW_AFTER_CUTOVER = dt.timedelta(days=30)
HISTORY_YEARS = 6  # dossiers go back this many years before the cut-over


@dataclass(frozen=True)
class SiteSizes:
    """Row counts before defects add rows; scale 1.0 is a district-sized site.

    The minimums keep tiny scales (0.05) large enough to plant every defect
    kind on distinct rows.
    """

    units: int
    persons: int
    dossiers: int
    users: int
    system_log: int
    import_rows: int

    @classmethod
    def for_scale(cls, scale: float) -> SiteSizes:
        def size(per_unit_scale: float, minimum: int) -> int:
            return max(minimum, round(per_unit_scale * scale))

        return cls(
            units=size(200, 20),
            persons=size(1000, 40),
            dossiers=size(2000, 60),
            users=size(20, 4),
            system_log=size(300, 20),
            import_rows=size(40, 8),
        )


@dataclass(frozen=True)
class World:
    site_id: str
    seed: int
    scale: float
    cutover: dt.date
    office_code: str

    @cached_property
    def sizes(self) -> SiteSizes:
        return SiteSizes.for_scale(self.scale)

    @property
    def now(self) -> dt.datetime:
        """The generated world's present: every timestamp written is before it."""
        return dt.datetime.combine(self.cutover + WORLD_NOW_AFTER_CUTOVER, dt.time())

    @property
    def cutover_at(self) -> dt.datetime:
        return dt.datetime.combine(self.cutover, dt.time())

    @property
    def history_start(self) -> dt.datetime:
        return dt.datetime(self.cutover.year - HISTORY_YEARS, 1, 1)

    @property
    def province_code(self) -> str:
        return self.office_code[:2]

    @cached_property
    def offices(self) -> tuple[str, ...]:
        """The province office, then four district offices (the site's own among them)."""
        districts = [f"{self.province_code}{k:02d}" for k in range(1, 5)]
        if len(self.office_code) == 4 and self.office_code not in districts:
            districts[-1] = self.office_code
        return (self.province_code, *districts)

    def rng(self, purpose: str) -> random.Random:
        return random.Random(f"ts24-demo:{self.seed}:{self.site_id}:{purpose}")


def random_moment(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A whole-second moment in [start, end): DATETIME columns on MariaDB keep no fractions."""
    span = int((end - start).total_seconds())
    if span <= 0:
        return start.replace(microsecond=0)
    return (start + dt.timedelta(seconds=rng.randrange(span))).replace(microsecond=0)


def office_hours_moment(rng: random.Random, day: dt.date) -> dt.datetime:
    """A moment between 07:30 and 17:00 on `day`, when offices receive and process dossiers."""
    return dt.datetime.combine(day, dt.time(7, 30)) + dt.timedelta(seconds=rng.randrange(34_200))


def month_period(moment: dt.date, months_back: int = 0) -> tuple[int, int]:
    """(month, year) `months_back` months before `moment`'s month."""
    total = moment.year * 12 + (moment.month - 1) - months_back
    return total % 12 + 1, total // 12
