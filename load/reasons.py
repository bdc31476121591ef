"""Reason codes of the rows that the load itself rejects (after the transform accepted them).

Same shape as transform.REASON_CODES: code -> (action, description). Every
one of these is a reject: the row is listed in mig_rejects with the code and
counts as rejected in the accounting (legacy rows = loaded + rejected).
Conflicts are also listed in mig_conflicts.
"""

from __future__ import annotations

CONFLICT_CHANGED_AFTER_CUTOVER = "CONFLICT_CHANGED_AFTER_CUTOVER"
CONFLICT_OTHER_SITE = "CONFLICT_OTHER_SITE"
DUPLICATE_TARGET_KEY = "DUPLICATE_TARGET_KEY"
PARENT_NOT_LOADED = "PARENT_NOT_LOADED"
TARGET_REQUIRED_MISSING = "TARGET_REQUIRED_MISSING"
TARGET_VALUE_TOO_LONG = "TARGET_VALUE_TOO_LONG"
TARGET_TEXT_NUL = "TARGET_TEXT_NUL"

LOAD_REASON_CODES: dict[str, tuple[str, str]] = {
    CONFLICT_CHANGED_AFTER_CUTOVER: (
        "reject",
        "the new system already holds this row (same natural key) and changed it after the "
        "cut-over; it is not overwritten and is listed in mig_conflicts",
    ),
    CONFLICT_OTHER_SITE: (
        "reject",
        "the new system's row with the same natural key was loaded from another TS24 site or "
        "legacy table; it is not overwritten and is listed in mig_conflicts",
    ),
    DUPLICATE_TARGET_KEY: (
        "reject",
        "another legacy row of this site already holds the same natural key in the new system",
    ),
    PARENT_NOT_LOADED: (
        "reject",
        "the dossier this row belongs to was not loaded (rejected or in conflict), or the new system no longer holds it",
    ),
    TARGET_REQUIRED_MISSING: ("reject", "a column the new system requires is empty"),
    TARGET_VALUE_TOO_LONG: ("reject", "a value is longer than the new system's column allows"),
    TARGET_TEXT_NUL: ("reject", "a text value holds a NUL character, which PostgreSQL text cannot store"),
}

CONFLICT_CODES = (CONFLICT_CHANGED_AFTER_CUTOVER, CONFLICT_OTHER_SITE)
