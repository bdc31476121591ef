"""The purge gates: each one a named check with what it found and what to do when it fails.

Every gate is evaluated at plan time and again at execution, immediately
before the first destructive statement; one failing gate refuses the whole
purge (exit code 4) and nothing is destroyed. The plan records every result.

| gate | holds when |
|---|---|
| scope | the attachment folder holds neither the backup nor the work folder, overlaps no other site's, and the legacy database is not the target, the control store or inside those folders |
| server_identity | the legacy server reached is the one the assessment recorded (and, at execution, the one the plan names) |
| drained | the site is DRAINED (or past it, before PURGED) and its latest reconciliation found it drained |
| writes_stopped | writes to the legacy database are stopped (purge/write_stop.py) |
| final_backup | a final increment was taken after the write stop, the chain head is the one the custodian verified, and the chain verifies now (signatures, links, every part's hash) |
| custodian_verification | a custodian decrypted every part of that chain and a restore drill into a scratch database reproduced its fingerprints |
| live_equals_chain | the live fingerprints of every table, object definition and the attachment folder equal the verified chain's |
| validation_passed | the latest validation's verdict passed |
| ledger_verifies | the site's audit ledger verifies (hashes, signatures, order, head) |
| plan_current | (execution) the plan is signed by the pipeline key and what it lists is exactly what is there now |
| approvals | (execution) enough valid approvals of this plan by listed approvers other than its author |

Example::

    results = [GateResult.check("drained", state == "DRAINED", "state DRAINED", remedy="...")]
    require(results, site_id="hn-01", doing="plan the purge")      # raises GateRefused if one failed
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ts24_migrate.core.errors import GateRefused

GATES = (
    "scope",
    "server_identity",
    "drained",
    "writes_stopped",
    "final_backup",
    "custodian_verification",
    "live_equals_chain",
    "validation_passed",
    "ledger_verifies",
    "plan_current",
    "approvals",
)


@dataclass(frozen=True)
class GateResult:
    name: str
    holds: bool
    detail: str
    remedy: str | None = None

    @classmethod
    def check(cls, name: str, holds: bool, detail: str, *, remedy: str) -> GateResult:
        return cls(name, bool(holds), detail, None if holds else remedy)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "holds": self.holds, "detail": self.detail, "remedy": self.remedy}


class PurgeRefused(GateRefused):
    """A purge gate failed; `results` holds every gate evaluated."""

    def __init__(self, message: str, results: Sequence[GateResult]):
        super().__init__(message)
        self.results = list(results)


def failed(results: Iterable[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.holds]


def require(results: Sequence[GateResult], *, site_id: str, doing: str) -> None:
    """Refuse (exit code 4) when any gate failed: the first one is named with what to do."""
    bad = failed(results)
    if not bad:
        return
    first = bad[0]
    others = f" (also failing: {', '.join(r.name for r in bad[1:])})" if len(bad) > 1 else ""
    raise PurgeRefused(
        f"site {site_id}: refusing to {doing}: gate {first.name} failed: {first.detail}. "
        f"What to do: {first.remedy}{others}; nothing was destroyed",
        results,
    )


def differences(expected: dict[str, Any], found: dict[str, Any], *, what: str, limit: int = 5) -> list[str]:
    """Human lines for the keys whose values differ between two {name: fingerprint} maps."""
    lines = []
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            lines.append(f"{what} {name} is gone")
        elif name not in expected:
            lines.append(f"{what} {name} is new")
        elif expected[name] != found[name]:
            lines.append(f"{what} {name} changed")
    return lines[:limit] + ([f"and {len(lines) - limit} more"] if len(lines) > limit else [])
