"""What each reason and flag code means, for the auditor report's legend.

The one source of truth is the code: transform/reason_codes.py (rejects and
data-quality flags of the transform; docs/reason-codes.md is generated from
it) and load/reasons.py (rows the load itself refuses). The report explains
every code where it shows it, and lists them all in its legend.

Example::

    code_legend()["ORPHAN_UNIT"]
    # {'action': 'reject', 'meaning': "The dossier's unit (MA_DV) ...", 'stage': 'transform'}
"""

from __future__ import annotations

from typing import Any

from load.reasons import LOAD_REASON_CODES
from transform.reason_codes import REASON_CODES


def code_legend() -> dict[str, dict[str, Any]]:
    """code -> action (reject or flag), meaning (one sentence) and the stage that sets it."""
    legend = {
        code: {"action": action, "meaning": meaning, "stage": "transform"}
        for code, (action, meaning) in REASON_CODES.items()
    }
    for code, (action, meaning) in LOAD_REASON_CODES.items():
        legend[code] = {"action": action, "meaning": meaning[:1].upper() + meaning[1:] + ".", "stage": "load"}
    return legend


def meaning(code: str) -> str:
    """The meaning of a code, or a plain note for one this release does not know."""
    entry = code_legend().get(code)
    return entry["meaning"] if entry else "a code this release does not describe (see docs/reason-codes.md)"
