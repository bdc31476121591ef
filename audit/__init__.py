"""audit stage: the append-only, hash-chained, signed event ledger of every site.

from audit import Ledger, verify_ledger
ledger = Ledger(path, signing_key)
ledger.append("hn-01", "extract", "extracted", {"tables": 14, "rows": 120345}, run_id=run_id)
verify_ledger(path, [public_key]).ok
"""

from .events import LedgerEvent
from .head import HeadStatement, head_path, read_head
from .ledger import Ledger, parse_line, read_events
from .verify import LedgerVerification, verify_ledger

__all__ = [
    "HeadStatement",
    "Ledger",
    "LedgerEvent",
    "LedgerVerification",
    "head_path",
    "parse_line",
    "read_events",
    "read_head",
    "verify_ledger",
]
