"""What a transform run knows across batches, and what one batch returns.

Cross-row checks (duplicates after normalization, orphaned references) need
memory beyond one batch. The load transforms tables in dependency order
(offices, units, persons, dossiers, files, history) and the context remembers
what each accepted: office and unit codes, dossier ids and numbers, persons'
identities. A resumed or delta run seeds the same memory from rows it loaded
before, through the same `remember_accepted` the transform itself calls, so
it reaches the same verdicts as one uninterrupted run.

Example::

    ctx = TransformContext("site-01", cutover=date(2025, 7, 1), attachments_dir=Path("att"),
                           reference_date=date(2025, 7, 31))
    ctx.known_unit_codes.update(["AB123"])          # or remember_accepted(...) with loaded rows
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd


@dataclass
class TransformContext:
    site_id: str
    cutover: date
    attachments_dir: Path | None = None
    reference_date: date = field(default_factory=date.today)
    # accepted codes and ids, for orphan checks
    known_office_codes: set[str] = field(default_factory=set)
    known_unit_codes: set[str] = field(default_factory=set)
    known_dossier_ids: set[str] = field(default_factory=set)
    # normalized key -> legacy key of the accepted row, for duplicate checks; a row
    # seen again under its own legacy key (a retried chunk, a delta) is not a duplicate
    accepted_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    accepted_dossier_numbers: dict[str, str] = field(default_factory=dict)
    # person identity -> social insurance number, for POSSIBLE_DUPLICATE_PERSON
    persons_by_citizen_id: dict[str, str] = field(default_factory=dict)
    persons_by_name_birth_unit: dict[tuple, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.attachments_dir is not None:
            self.attachments_dir = Path(self.attachments_dir)

    def keys_of(self, legacy_table: str) -> dict[str, str]:
        return self.accepted_keys.setdefault(legacy_table, {})

    def remember_accepted(self, legacy_table: str, rows: pd.DataFrame) -> None:
        """Record accepted rows (a TransformResult.rows frame, or the same columns read back from
        the target with their legacy_key) so later batches and tables see them."""
        from .tables import TABLES  # late import: the table modules import this one

        TABLES[legacy_table.upper()].remember(self, rows)


@dataclass
class TransformResult:
    """One batch's outcome: every input row is in exactly one of `rows` and `rejects`."""

    legacy_table: str
    target_table: str
    rows: pd.DataFrame
    rejects: pd.DataFrame
    text_repairs: Counter = field(default_factory=Counter)

    @property
    def rows_in(self) -> int:
        return len(self.rows) + len(self.rejects)

    def rejects_by_reason(self) -> dict[str, int]:
        return dict(Counter(self.rejects["reason_code"])) if len(self.rejects) else {}

    def flags_by_code(self) -> dict[str, int]:
        counts: Counter = Counter()
        for flags in self.rows["dq_flags"]:
            if flags:
                counts.update(flags.split(";"))
        return dict(counts)
