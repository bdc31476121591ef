"""Validate a migration: GX suites on the legacy data and the target, parity, accounting.

- parity_for_table / parity_for_site (validation.parity): the target still holds
  exactly what the load wrote; missing, extra and changed keys named.
- accounting_check, figures_from_stages (validation.accounting): source = backed up
  = loaded + rejected, from the figures the stages reported.
- run_target_suites (validation.target_suites): expectations the target must pass.
- run_legacy_profile (validation.legacy_profile): how dirty the legacy data is.

The GX entry points import Great Expectations (a few seconds) only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .accounting import AccountingRow, accounting_check, figures_from_stages, recorded_counts
from .parity import ParityReport, TableParity, parity_for_site, parity_for_table

__all__ = [
    "AccountingRow",
    "ParityReport",
    "SuiteResults",
    "TableParity",
    "accounting_check",
    "figures_from_stages",
    "parity_for_site",
    "parity_for_table",
    "recorded_counts",
    "run_legacy_profile",
    "run_target_suites",
]


if TYPE_CHECKING:
    # The type checker sees the entry points' own signatures; at run time they are loaded on first call.
    from .gx_runner import SuiteResults
    from .legacy_profile import run_legacy_profile
    from .target_suites import run_target_suites
else:

    def run_target_suites(*args: Any, **kwargs: Any) -> SuiteResults:
        """See validation.target_suites.run_target_suites."""
        from .target_suites import run_target_suites as run

        return run(*args, **kwargs)

    def run_legacy_profile(*args: Any, **kwargs: Any) -> SuiteResults:
        """See validation.legacy_profile.run_legacy_profile."""
        from .legacy_profile import run_legacy_profile as run

        return run(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "SuiteResults":
        from .gx_runner import SuiteResults

        return SuiteResults
    raise AttributeError(name)
