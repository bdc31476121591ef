"""Reading and checking a site's ledger for `audit verify` and `audit show` (the CLI prints, this reads)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit import read_events, verify_ledger
from audit.verify import LedgerVerification
from ts24_migrate.core.errors import UsageError


def check_ledger(path: Path, public_keys: Sequence[str | Path], expected_head: str | None) -> LedgerVerification:
    """Every event's hash, signature and place in the chain, offline."""
    return verify_ledger(path, list(public_keys), expected_head=expected_head)


def ledger_rows(path: Path, site: str | None, tail: int | None) -> list[dict[str, Any]]:
    """The ledger's events as rows (of one site, the last `tail`); a line that is not an event is a row
    naming its problem, never skipped. Reading checks no hash or signature."""
    if not path.exists():
        raise UsageError(f"ledger file {path} does not exist")
    rows: deque[dict[str, Any]] = deque(maxlen=tail)
    for line_no, event, problem in read_events(path):
        if event is None:
            rows.append({"line": line_no, "problem": problem})
        elif site is None or event.site == site:
            rows.append({"line": line_no, **event.to_dict()})
    return list(rows)
