"""The report sections that the assessment and the auditor's validation report share.

Database objects (views, triggers, procedures, sequences), the attachment
folder against the rows (extract.attachments.check_references) and text kept
as framed binary read the same in both reports: one renderer, the labels of
ts24_migrate.core.labels, the counts as the check computed them.

The layout is extract/templates/findings.html.j2 (macros); here, their data.

Example::

    html = attachments_section(manifest.attachments["references"])
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from ts24_migrate.core.labels import (
    ATTACHMENT_FINDING_REJECTS,
    ATTACHMENT_FINDINGS,
    NUL_TEXT_LABEL,
    OBJECT_KIND_LABELS,
    OBJECTS_EXPLAINED,
    OBJECTS_LABEL,
    attachment_findings,
    object_counts_text,
)
from ts24_migrate.core.reporting import fragment

LISTED = 50  # entries listed per finding on a page (the JSON beside it keeps what was recorded)


def _section(macro: str, **data: Any) -> Markup:
    return fragment("extract", "findings.html.j2", macro, **data)


def _fingerprint(value: str | None) -> str:
    return value or "none (definition not readable)"


def objects_section(items: list[dict[str, Any]] | None, note: str | None = None, *, anchor: str = "objects") -> Markup:
    """Every view, trigger, procedure, function, sequence: kind, name, table, fingerprint."""
    title = OBJECTS_LABEL[0].upper() + OBJECTS_LABEL[1:]
    counts: dict[str, int] = {}
    for item in items or []:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    rows = [
        [
            OBJECT_KIND_LABELS.get(i["kind"], (i["kind"],))[0],
            i["name"],
            i.get("table") or "",
            _fingerprint(i.get("fingerprint")),
            i.get("definition_bytes"),
            i.get("note") or "",
        ]
        for i in items or []
    ]
    return _section(
        "objects_section",
        title=title,
        anchor=anchor,
        found=None if items is None else object_counts_text(counts),  # None: not recorded by this run
        rows=rows,
        note=note,
        explained=OBJECTS_EXPLAINED,
    )


def _entry_text(key: str, entry: dict[str, Any]) -> str:
    if key == "unreferenced":
        return f"{entry['path']} ({entry['size']} bytes, SHA-256 {entry['sha256']})"
    if key == "links":
        return f"{entry['path']} -> {entry['target']}"
    if key == "special":
        return f"{entry['path']} ({entry['kind']})"
    where = entry.get("path") if entry.get("path") is not None else f"in the database ({entry.get('stored')})"
    text = f"{entry.get('table')} {entry.get('key')}: {where}"
    if "expected" in entry:
        text += f" (row: {entry['expected']}, found: {entry['actual']})"
    if entry.get("target") is not None:
        text += f" -> {entry['target']}"
    return text


def attachments_section(
    references: dict[str, Any] | None,
    *,
    anchor: str = "attachments",
    rejects_by_reason: dict[str, int] | None = None,
    files_backed_up: int | None = None,
) -> Markup:
    """The folder against the rows: one line per kind of finding with its count, then the entries.

    `rejects_by_reason` (the load's) adds, beside each finding, the rows the load rejected for it.
    """
    title = "Attachment folder and file references"
    if references is None:
        return _section("attachments_section", title=title, anchor=anchor, headers=[], rows=None, listed=[], note=None)
    headers = ["finding", "count"] + (
        ["rows the load rejected for it (reason code)"] if rejects_by_reason is not None else []
    )
    rows: list[list[Any]] = [["files in the folder", references.get("files_in_folder")]]
    if files_backed_up is not None:
        rows.append(["files in the backup (every regular file of the folder)", files_backed_up])
    rows.append(["file references in the rows", references.get("referenced")])
    if rejects_by_reason is not None:
        rows = [row + [""] for row in rows]
    listed = []
    for key, label, count in attachment_findings(references):
        row: list[Any] = [label, count]
        if rejects_by_reason is not None:
            code = ATTACHMENT_FINDING_REJECTS.get(key)
            row.append(f"{rejects_by_reason.get(code, 0)} ({code})" if code else "")
        rows.append(row)
        entries = references.get(key) or []
        if entries:
            listed.append(
                {
                    "key": key,
                    "label": label[0].upper() + label[1:],
                    "entries": [_entry_text(key, e) for e in entries[:LISTED]],
                    "more": count - min(len(entries), LISTED),
                }
            )
    return _section(
        "attachments_section",
        title=title,
        anchor=anchor,
        headers=headers,
        rows=rows,
        listed=listed,
        note=references.get("note"),
    )


def nul_text_section(rows: list[tuple[str, str, int]], *, anchor: str = "nul-text") -> Markup:
    """(table, column, rows) whose text held NUL and was backed up as framed binary."""
    return _section(
        "nul_text_section",
        anchor=anchor,
        rows=[list(row) for row in rows],
        label=NUL_TEXT_LABEL[0].upper() + NUL_TEXT_LABEL[1:],
    )


def attachment_findings_markdown(references: dict[str, Any] | None) -> list[str]:
    """The same findings as Markdown list items, each with its entries below it."""
    if references is None:
        return ["- attachment folder: not checked"]
    lines = [f"- files in the attachment folder: {references.get('files_in_folder')}"]
    for key, label, count in attachment_findings(references):
        lines.append(f"- {label}: {count}")
        lines += [f"  - `{_entry_text(key, e)}`" for e in (references.get(key) or [])[:LISTED]]
    return lines


__all__ = [
    "ATTACHMENT_FINDINGS",
    "attachment_findings_markdown",
    "attachments_section",
    "nul_text_section",
    "objects_section",
]
