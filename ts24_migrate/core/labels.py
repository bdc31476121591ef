"""One wording per figure: every output that shows one of these figures takes its label from here.

The same fact reaches an operator through several outputs: the assessment
report, the `backup` command's summary, the manifest's warnings, the auditor's
validation report, Prefect artifacts. Each of them counts it from the same
computed list (e.g. `attachments.references.md5_mismatch`, found once by
extract.attachments.check_references) and names it with the label below, so
"attachments whose content differs from the MD5 their row recorded: 2" reads
the same, with the same number, wherever it appears.

Example::

    for key, label, count in attachment_findings(manifest.attachments["references"]):
        print(f"{label}: {count}")
"""

from __future__ import annotations

from typing import Any

# -- the attachment folder and the rows that refer to it (extract.attachments.ReferenceCheck) --------
ATTACHMENT_FINDINGS: dict[str, str] = {
    "missing": "attachments referenced by a row but missing from the folder",
    "md5_mismatch": "attachments whose content differs from the MD5 their row recorded",
    "size_mismatch": "attachments whose size differs from the size their row recorded",
    "outside_folder": "references to a path outside the attachment folder",
    "linked": "references through a symbolic link (not followed)",
    "unreferenced": "files in the folder that no row references (backed up like the others)",
    "links": "symbolic links in the folder (reported with their target, never followed or backed up)",
    "special": "special files in the folder (pipes, sockets, devices: not backed up)",
}
# The load's reason code for rows with the same finding (docs/reason-codes.md), where it rejects them.
ATTACHMENT_FINDING_REJECTS: dict[str, str] = {
    "missing": "ATTACHMENT_MISSING",
    "md5_mismatch": "ATTACHMENT_MD5_MISMATCH",
    "outside_folder": "ATTACHMENT_PATH_INVALID",
}


def finding_count(references: dict[str, Any], key: str) -> int:
    """The count of one finding: the length of its list (unreferenced files: their full count, the
    list being capped)."""
    if key == "unreferenced":
        return int(references.get("unreferenced_files") or len(references.get("unreferenced") or []))
    return len(references.get(key) or [])


def attachment_findings(references: dict[str, Any] | None) -> list[tuple[str, str, int]]:
    """(key, label, count) of every kind of finding, in a fixed order; all zero without a check."""
    references = references or {}
    return [(key, label, finding_count(references, key)) for key, label in ATTACHMENT_FINDINGS.items()]


def finding_line(key: str, count: int) -> str:
    """'attachments whose content differs from the MD5 their row recorded: 2'."""
    return f"{ATTACHMENT_FINDINGS[key]}: {count}"


# -- database objects other than tables (extract.objects) --------------------------------------------
OBJECT_KIND_LABELS: dict[str, tuple[str, str]] = {
    "view": ("view", "views"),
    "trigger": ("trigger", "triggers"),
    "procedure": ("stored procedure", "stored procedures"),
    "function": ("function", "functions"),
    "sequence": ("sequence", "sequences"),
    "event": ("scheduled event", "scheduled events"),
}
OBJECTS_LABEL = "views, triggers, procedures, functions, sequences"
OBJECTS_EXPLAINED = (
    "Their definitions are saved in the encrypted backup (parts/@objects, fingerprints in the "
    "manifest). A view's rows are not backed up as data: they derive from tables, which are. "
    "The purge must drop every object listed here, after comparing its live fingerprint "
    "(SHA-256 of the definition) with the backup's."
)


def object_counts_text(counts: dict[str, int]) -> str:
    """'1 view, 2 triggers' (the kinds found), or 'none'."""
    found = [f"{n} {OBJECT_KIND_LABELS.get(kind, (kind, kind))[n != 1]}" for kind, n in counts.items() if n]
    return ", ".join(found) or "none"


# -- text stored as framed binary in the backup (ts24_migrate.core.rows.arrow_types) --------------------------------
NUL_TEXT_LABEL = "text values holding a NUL character (backed up as framed binary, restored as the same text)"


def nul_text_rows(tables: dict[str, dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(table, column, rows) from per-table figures that carry "nul_text": {column: rows}."""
    return [
        (table, column, rows)
        for table, figures in sorted(tables.items())
        for column, rows in sorted((figures.get("nul_text") or {}).items())
    ]


# -- dossiers -------------------------------------------------------------------------------------
IN_FLIGHT_LABEL = "in-flight dossiers (statuses 0-3)"
RECEIVED_AFTER_CUTOVER_LABEL = "dossiers received after cut-over (violations)"
