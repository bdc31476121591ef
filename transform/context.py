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

from ts24_migrate.core.key_store import DEFAULT_MEMORY_ENTRIES, KeyStore

from .verdicts import FLAG_COLUMNS


@dataclass
class TransformContext:
    site_id: str
    cutover: date
    attachments_dir: Path | None = None
    reference_date: date = field(default_factory=date.today)
    # At most this many entries of each KeyStore stay in memory (ts24_migrate.core.key_store).
    keys_in_memory: int = DEFAULT_MEMORY_ENTRIES
    # What earlier batches accepted, in KeyStores (memory bounded, see ts24_migrate.core.key_store):
    # accepted codes and ids, for orphan checks
    known_office_codes: KeyStore = field(init=False)
    known_unit_codes: KeyStore = field(init=False)
    known_dossier_ids: KeyStore = field(init=False)
    # normalized key -> legacy key of the accepted row, for duplicate checks; a row
    # seen again under its own legacy key (a retried chunk, a delta) is not a duplicate
    accepted_keys: dict[str, KeyStore] = field(init=False, default_factory=dict)
    accepted_dossier_numbers: KeyStore = field(init=False)
    # person identity -> social insurance number, for POSSIBLE_DUPLICATE_PERSON
    persons_by_citizen_id: KeyStore = field(init=False)
    persons_by_name_birth_unit: KeyStore = field(init=False)

    def __post_init__(self) -> None:
        if self.attachments_dir is not None:
            self.attachments_dir = Path(self.attachments_dir)
        for name in (
            "known_office_codes",
            "known_unit_codes",
            "known_dossier_ids",
            "accepted_dossier_numbers",
            "persons_by_citizen_id",
            "persons_by_name_birth_unit",
        ):
            setattr(self, name, KeyStore(self.keys_in_memory))

    def keys_of(self, legacy_table: str) -> KeyStore:
        store = self.accepted_keys.get(legacy_table)
        if store is None:
            store = self.accepted_keys[legacy_table] = KeyStore(self.keys_in_memory)
        return store

    def remember_accepted(self, legacy_table: str, rows: pd.DataFrame) -> None:
        """Record accepted rows (a TransformResult.rows frame, or the same columns read back from
        the target with their legacy_key) so later batches and tables see them."""
        from .tables import TABLES  # late import: the table modules import this one

        TABLES[legacy_table.upper()].remember(self, rows)


@dataclass
class TransformResult:
    """One batch's outcome: every input row is in exactly one of `rows` and `rejects`.

    `flags`: the flagged values of `rows` (transform.verdicts.FLAG_COLUMNS: legacy key,
    flag code, field, original and loaded value); a row's codes are also in its dq_flags.
    """

    legacy_table: str
    target_table: str
    rows: pd.DataFrame
    rejects: pd.DataFrame
    text_repairs: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FLAG_COLUMNS)))

    @property
    def rows_in(self) -> int:
        return len(self.rows) + len(self.rejects)

    def rejects_by_reason(self) -> dict[str, int]:
        return dict(Counter(self.rejects["reason_code"])) if len(self.rejects) else {}

    def flags_by_code(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for flags in self.rows["dq_flags"]:
            if flags:
                counts.update(flags.split(";"))
        return dict(counts)
