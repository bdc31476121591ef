"""Keys the transform remembers across batches: exact answers, bounded memory.

The transform checks rows against rows of earlier batches and tables: is this
unit code known, was this dossier number accepted before, which person holds
this citizen ID. In plain dicts that memory grows with the site (hundreds of
bytes per dossier and person), and the load promises memory bounded by its
chunk size. A KeyStore keeps at most `memory_entries` entries in memory and
moves them, when it holds that many, into a private temporary SQLite database:
keys are social insurance and ID numbers, so it is made 0600 in a fresh 0700
folder, and both are unlinked as soon as SQLite holds the file open (its
journal stays in memory): no other account can open it, and nothing is left
behind even by a killed run.

A batch first announces the keys it will ask about (`warm`): their stored
entries come back in one query, so the per-row checks stay dictionary
lookups. A key asked about without warming costs one indexed query and gets
the same answer: warming is only about speed.

It reads like a dict of str -> str (get, setdefault, [k] = v, in, items) and
like a set of str (add, update, == a set), so the table modules keep their
plain per-row code.

Example::

    seen = KeyStore(memory_entries=50_000)
    seen.warm(numbers)                     # the batch's keys
    first = seen.get(number)               # None: not seen before
    seen.setdefault(number, legacy_key)
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from typing import Final, TypeVar, overload

_T = TypeVar("_T")


class _Missing(enum.Enum):
    """A default no stored value can be (None can: the set-like entries are '')."""

    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING
DEFAULT_MEMORY_ENTRIES = 50_000


def private_temporary_database(prefix: str = "ts24-keys-") -> sqlite3.Connection:
    """A SQLite database on disk that has no name: owner-only while it had one, unlinked at once."""
    folder = tempfile.mkdtemp(prefix=prefix)  # 0700
    path = os.path.join(folder, "keys.sqlite")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        # The load reads ahead in another thread than the one that seeds a resumed run, never both at once.
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A journal beside a file without a name cannot be made: keep it in memory (a rollback still works).
        db.execute("PRAGMA journal_mode=MEMORY").fetchall()
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(folder)
    return db


class KeyStore:
    def __init__(self, memory_entries: int = DEFAULT_MEMORY_ENTRIES):
        if memory_entries <= 0:
            raise ValueError("memory_entries must be positive")
        self.memory_entries = memory_entries
        self._memory: dict[str, str] = {}  # entries not moved to the database yet
        self._db: sqlite3.Connection | None = None
        # The batch's keys (warm) whose stored entries were fetched, and those entries.
        self._warm_keys: set[str] = set()
        self._warm: dict[str, str] = {}

    # -- dict and set ----------------------------------------------------------
    @overload
    def get(self, key: str | None) -> str | None: ...
    @overload
    def get(self, key: str | None, default: _T) -> str | _T: ...
    def get(self, key: str | None, default: _T | None = None) -> str | _T | None:
        if key is None:
            return default
        value = self._memory.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if self._db is None:
            return default
        if key in self._warm_keys:
            return self._warm.get(key, default)
        row = self._db.execute("SELECT v FROM entries WHERE k = ?", (key,)).fetchone()
        if row is None:
            return default
        stored: str = row[0]
        return stored

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _MISSING) is not _MISSING

    def __setitem__(self, key: str, value: str) -> None:
        self._memory[key] = value
        if len(self._memory) >= self.memory_entries:
            self._move_to_database()

    def setdefault(self, key: str, value: str) -> str:
        current = self.get(key, _MISSING)
        if current is _MISSING:
            self[key] = value
            return value
        return current

    def add(self, key: str) -> None:
        """As a set (every value ''): remember `key`, without asking whether it is there already."""
        self[key] = ""

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def items(self) -> Iterator[tuple[str, str]]:
        if self._db is not None:
            for key, value in self._db.execute("SELECT k, v FROM entries ORDER BY k"):
                if key not in self._memory:
                    yield key, value
        yield from self._memory.items()

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.items())

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (set, frozenset)):
            return set(self) == other
        if isinstance(other, dict):
            return dict(self.items()) == other
        if isinstance(other, KeyStore):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like dict and set

    def __repr__(self) -> str:
        stored = "" if self._db is None else ", the rest in a temporary database"
        return f"KeyStore({len(self._memory)} entries in memory{stored})"

    # -- bounded memory --------------------------------------------------------
    def warm(self, keys: Iterable[str | None]) -> None:
        """Fetch the stored entries of `keys` (a batch's) at once, for the lookups that follow."""
        batch = {key for key in keys if key is not None}
        self._warm = {}
        db = self._db
        wanted = [] if db is None else sorted(key for key in batch if key not in self._memory)
        if db is not None and wanted:
            # One parameter, a JSON array of the keys: a third of the cost of filling a table with them.
            self._warm = dict(
                db.execute(
                    "SELECT e.k, e.v FROM json_each(?) AS w JOIN entries AS e ON e.k = w.value", (json.dumps(wanted),)
                )
            )
        # Every key of the batch is known now: in memory, fetched, or in neither. Those in memory
        # may move to the database later; _move_to_database keeps them known (in _warm).
        self._warm_keys = batch

    def close(self) -> None:
        """Drop the temporary database (also done when the store is garbage-collected)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _move_to_database(self) -> None:
        if self._db is None:
            self._db = private_temporary_database()
            self._db.execute("CREATE TABLE entries (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID")
        with self._db:  # one transaction: a few hundred thousand rows in a fraction of a second
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO entries (k, v) VALUES (?, ?)", self._memory.items())
        # The batch's fetched entries stay valid, as long as those it changed since are updated:
        # forgetting them all made every later lookup of the batch a query of its own.
        for key in self._warm_keys.intersection(self._memory):
            self._warm[key] = self._memory[key]
        self._memory.clear()
