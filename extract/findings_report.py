"""The report sections that the assessment and the auditor's validation report share.

Database objects (views, triggers, procedures, sequences), the attachment
folder against the rows (extract.attachments.check_references) and text kept
as framed binary read the same in both reports: one renderer, the labels of
ts24_migrate.core.labels, the counts as the check computed them.

Example::

    html = attachments_section(manifest.attachments["references"])
"""

from __future__ import annotations

from typing import Any

from ts24_migrate.core import reporting as r
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

LISTED = 50  # entries listed per finding on a page (the JSON beside it keeps what was recorded)


def _table(ident: str, headers: list[str], rows: list[list[Any]], numeric: tuple[int, ...] = ()) -> str:
    """reporting.table with an id, so a reader (or a test) can find it."""
    return r.table(headers, rows, numeric=numeric).replace("<table>", f'<table id="{r.esc(ident)}">', 1)


def _fingerprint(value: str | None) -> str:
    return value or "none (definition not readable)"


def objects_section(items: list[dict[str, Any]] | None, note: str | None = None, *, anchor: str = "objects") -> str:
    """Every view, trigger, procedure, function, sequence: kind, name, table, fingerprint."""
    title = OBJECTS_LABEL[0].upper() + OBJECTS_LABEL[1:]
    if items is None:
        return r.section(
            title, r.paragraph("Not recorded by this run (it predates object discovery).", "muted"), anchor=anchor
        )
    counts: dict[str, int] = {}
    for item in items:
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
        for i in items
    ]
    parts = [r.paragraph(f"Found: {object_counts_text(counts)}.")]
    if rows:
        parts.append(
            _table(
                f"{anchor}-table",
                ["kind", "name", "on table", "fingerprint (SHA-256 of the definition)", "definition bytes", "note"],
                rows,
                numeric=(4,),
            )
        )
    if note:
        parts.append(r.paragraph(note, "bad"))
    parts.append(r.paragraph(OBJECTS_EXPLAINED, "muted"))
    return r.section(title, *parts, anchor=anchor)


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
) -> str:
    """The folder against the rows: one line per kind of finding with its count, then the entries.

    `rejects_by_reason` (the load's) adds, beside each finding, the rows the load rejected for it.
    """
    title = "Attachment folder and file references"
    if references is None:
        return r.section(title, r.paragraph("No attachment folder was checked.", "muted"), anchor=anchor)
    headers = ["finding", "count"] + (
        ["rows the load rejected for it (reason code)"] if rejects_by_reason is not None else []
    )
    rows: list[list[Any]] = [["files in the folder", references.get("files_in_folder")]]
    if files_backed_up is not None:
        rows.append(["files in the backup (every regular file of the folder)", files_backed_up])
    rows.append(["file references in the rows", references.get("referenced")])
    if rejects_by_reason is not None:
        rows = [row + [""] for row in rows]
    for key, label, count in attachment_findings(references):
        row: list[Any] = [label, count]
        if rejects_by_reason is not None:
            code = ATTACHMENT_FINDING_REJECTS.get(key)
            row.append(f"{rejects_by_reason.get(code, 0)} ({code})" if code else "")
        rows.append(row)
    parts = [_table(f"{anchor}-table", headers, rows, numeric=(1,))]
    listed = []
    for key, label, count in attachment_findings(references):
        entries = references.get(key) or []
        if not entries:
            continue
        shown = "".join(f"<li><code>{r.esc(_entry_text(key, e))}</code></li>" for e in entries[:LISTED])
        more = count - min(len(entries), LISTED)
        tail = f'<li class="muted">and {more} more</li>' if more > 0 else ""
        listed.append(
            f'<h3>{r.esc(label[0].upper() + label[1:])}</h3><ul id="attachments-{r.esc(key)}">{shown}{tail}</ul>'
        )
    parts += listed
    if references.get("note"):
        parts.append(r.paragraph(references["note"], "muted"))
    parts.append(
        r.paragraph(
            "Every regular file of the folder is backed up, referenced or not. A symbolic link is reported with the "
            "text it points to and is never followed: its target is not read and not backed up, and a linked folder "
            "is not entered. Content kept in the database (NOI_DUNG) is checked against MD5 and KICH_THUOC like a "
            "file.",
            "muted",
        )
    )
    return r.section(title, *parts, anchor=anchor)


def nul_text_section(rows: list[tuple[str, str, int]], *, anchor: str = "nul-text") -> str:
    """(table, column, rows) whose text held NUL and was backed up as framed binary."""
    title = "Text holding NUL characters"
    body = (
        _table(f"{anchor}-table", ["legacy table", "column", "rows"], [list(row) for row in rows], numeric=(2,))
        if rows
        else r.paragraph("No text value held a NUL character.")
    )
    return r.section(
        title,
        body,
        r.paragraph(
            f"{NUL_TEXT_LABEL[0].upper() + NUL_TEXT_LABEL[1:]}. SQL Server, MariaDB and SQLite text may hold NUL; "
            "PostgreSQL text may not. In the backup part where such a value occurs, its column is stored as binary: each "
            "value framed as a type tag, its length and its UTF-8 bytes; a restore decodes it to the identical text "
            "and the fingerprints prove it. The load rejects such a value for the new system (TARGET_TEXT_NUL) "
            "rather than alter it.",
            "muted",
        ),
        anchor=anchor,
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
