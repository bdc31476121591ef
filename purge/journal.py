"""The purge journal: each destructive step recorded durably before and after it, so a kill resumes.

One JSON line per record, fsynced before the step goes on (the backup's
journal, backups.part_store.Journal). A step is "begun" (with what a resume
needs, e.g. the temporary name a file is renamed to) and then "done". A line
cut short by a kill is dropped before the next append, so it never damages
the lines after it.

Example::

    journal = PurgeJournal(folder / "journal.jsonl")
    journal.record("begun", step="file:2020/a.pdf", temporary=".purge-3f1c")
    journal.record("done", step="file:2020/a.pdf", bytes=5120)
    journal.state("file:2020/a.pdf")      # 'done'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from backups.part_store import Journal
from ts24_migrate.core.durable import fsync_dir
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.private_files import make_private_dirs


class PurgeJournal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._journal = Journal(self.path)
        self._entries: list[dict[str, Any]] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def entries(self) -> list[dict[str, Any]]:
        if self._entries is None:
            self._entries = list(self._journal.entries())
        return self._entries

    def record(self, event: str, **data: Any) -> None:
        created = not self.path.exists()
        if created:
            make_private_dirs(self.path.parent)
        else:
            self._drop_torn_tail()
        self._journal.append({"event": event, **data})
        if created:
            fsync_dir(self.path.parent)
        self.entries().append({"event": event, **data})

    def _drop_torn_tail(self) -> None:
        with open(self.path, "rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)
                handle.flush()
                os.fsync(handle.fileno())
                self._entries = None

    def has(self, event: str) -> dict[str, Any] | None:
        """The last record of `event` (e.g. "started"), or None."""
        return next((e for e in reversed(self.entries()) if e["event"] == event), None)

    def recorded(self, event: str) -> dict[str, Any]:
        """The last record of an event the purge wrote (durably) before this point; its absence means the
        journal was cut or edited, and nothing more may be destroyed on its word."""
        entry = self.has(event)
        if entry is None:
            raise VerificationError(
                f"the purge journal {self.path} has no {event!r} record although the purge wrote one: it was "
                f"cut or edited; compare it with the ledger's purge events before going on"
            )
        return entry

    def state(self, step: str) -> str | None:
        """None (not begun), "begun" or "done"."""
        state = None
        for entry in self.entries():
            if entry.get("step") == step and entry["event"] in ("begun", "done"):
                state = entry["event"]
        return state

    def begun_record(self, step: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.entries()) if e.get("step") == step and e["event"] == "begun"), None)

    def done_records(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e["event"] == "done"]
