"""The validation report as one self-contained HTML page (no script, no external asset).

Everything shown is read from the `SiteReport` (validation/report.py), the
same data as the JSON beside it; nothing is computed here but layout. Sections
carry ids (verdict, accounting, rejects, flags, backup, objects, attachments,
nul-text, expectations, parity, dossiers, ledger, runs, codes) so that a reader,
or a test, can jump to them. Every moment is written one way
(reporting.timestamp), every file by its name from the inventory's folder,
every code with its meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from extract.findings_report import attachments_section, nul_text_section, objects_section
from ts24_migrate.core import reporting as r
from ts24_migrate.core.labels import IN_FLIGHT_LABEL, RECEIVED_AFTER_CUTOVER_LABEL
from ts24_migrate.core.reporting import esc, timestamp

from .charts import Bar, Segment, bar_chart, simple_bars
from .code_legend import meaning
from .expectation_words import plain_words

KEYS_LISTED = 50  # parity keys listed per kind and table in the page (the JSON keeps what was recorded)

_EXTRA_STYLE = """<style>
.reasons li{margin:.2rem 0}.ok{color:#145a2a;font-weight:600}.bad{color:#8a1616;font-weight:700}
tr.total td{font-weight:700;background:#f7f9fc}.chart{display:block;margin:.8rem 0;max-width:100%;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.6rem;margin:.8rem 0}
.card{border:1px solid #d8dee8;border-radius:.4rem;padding:.5rem .8rem}
.card b{display:block;font-size:1.1rem;overflow-wrap:anywhere}
code.hash{word-break:break-all}
@media print{.chart{page-break-inside:avoid}}
</style>"""


def _mark(ok: bool | None) -> str:
    if ok is None:
        return '<span class="muted">n/a</span>'
    return '<span class="ok">yes</span>' if ok else '<span class="bad">NO</span>'


def _cell(value: Any, *, numeric: bool = False, raw: bool = False) -> str:
    text = value if raw else esc("—" if value is None else value)
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    ident: str | None = None,
    total: Sequence[str] | None = None,
) -> str:
    """A table of pre-rendered <td> cells (so that marks and code can be styled)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(cells)}</tr>" for cells in rows)
    if total is not None:
        body += f'<tr class="total">{"".join(total)}</tr>'
    attr = f' id="{esc(ident)}"' if ident else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(items: Iterable[str], css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<ul{cls}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def _card(label: str, value: str, ok: bool | None = None) -> str:
    return f'<div class="card"><span class="muted">{esc(label)}</span><b>{esc(value)}</b>{_mark(ok)}</div>'


def _link(target: str | None, folder: Path, text: str) -> str:
    """A link relative to the report's folder (the Data Docs sit beside the report)."""
    if not target:
        return '<span class="muted">not recorded</span>'
    present = "" if (folder / target).exists() else ' <span class="muted">(not included in this folder)</span>'
    return f'<a href="{esc(target)}">{esc(text)}</a>{present}'


def _verdict(data: dict[str, Any]) -> str:
    verdict = data["verdict"]
    failed = len(verdict["reasons"])
    text = (
        "PASSED: every check holds"
        if verdict["passed"]
        else f"FAILED: {failed} check{' does' if failed == 1 else 's do'} not hold"
    )
    reasons = _list(verdict["reasons"], "reasons") if verdict["reasons"] else ""
    acc, parity, target = data["accounting"]["totals"], data["parity"], data["expectations"]["target"]
    cards = (
        '<div class="grid">'
        + "".join(
            [
                _card("accounting", f"{acc.get('source')} rows in {acc.get('tables')} tables", acc.get("ok")),
                _card(
                    "parity with the target",
                    "exact" if parity.get("exact") else f"{parity.get('differences')} differences",
                    parity.get("exact"),
                ),
                _card(
                    "target expectations",
                    f"{(target.get('evaluated') or 0) - (target.get('failed') or 0)} of {target.get('evaluated')} hold",
                    target.get("success"),
                ),
                _card("backup verified", str(data["backup"].get("backup_id")), data["backup"].get("verified")),
            ]
        )
        + "</div>"
    )
    return r.verdict(verdict["passed"], text) + reasons + cards


def _personal_data(data: dict[str, Any]) -> str:
    """Whether examples mask personal data (the default) or show it (internal use only): said at the top."""
    personal = data.get("personal_data") or {}
    shown = personal.get("examples") == "shown"
    return f'<p id="personal-data" class="{"bad" if shown else "muted"}">{esc(personal.get("notice"))}</p>'


def _reading_guide() -> str:
    return r.section(
        "How to read this report",
        r.paragraph(
            "The verdict at the top passes only when four things hold: every row of every legacy table is "
            "accounted for (rows read = rows in the encrypted backup, and for each table the new system "
            "receives, rows loaded + rows rejected with a reason); the target still holds exactly the rows "
            "the load wrote (parity: a row deleted, changed or added afterwards is named by its key); every "
            "expectation on the target's data holds (Great Expectations, details in the linked Data Docs); and "
            "the backup was decrypted and recounted by a custodian, with its manifest signature intact. The "
            "legacy data profile only describes how dirty the old data was; it never fails the verdict. Every "
            "figure here was recorded by the pipeline's runs in the control store (run ids at the bottom) and "
            "is the very figure those checks used; `ts24-migrate report SITE` rebuilds this page from the "
            "control store alone."
        ),
        anchor="reading",
    )


def _accounting(data: dict[str, Any]) -> str:
    accounting = data["accounting"]
    rows = []
    for row in accounting["tables"]:
        rows.append(
            [
                _cell(row["table"]),
                _cell(row.get("role") or ("mapped" if row["mapped"] else "not mapped")),
                _cell(row["source"], numeric=True),
                _cell(row["backed_up"], numeric=True),
                _cell(row["loaded"], numeric=True),
                _cell(row["rejected"], numeric=True),
                _cell(row["conflicts"], numeric=True),
                _cell(_mark(row["ok"]), raw=True),
                _cell("; ".join(row["problems"])),
            ]
        )
    totals = accounting["totals"]
    total = [
        _cell("all tables"),
        _cell(""),
        _cell(totals.get("source"), numeric=True),
        _cell(totals.get("backed_up"), numeric=True),
        _cell(totals.get("loaded"), numeric=True),
        _cell(totals.get("rejected"), numeric=True),
        _cell(totals.get("conflicts"), numeric=True),
        _cell(_mark(totals.get("ok")), raw=True),
        _cell(""),
    ]
    table = _table(
        [
            "legacy table",
            "role",
            "source rows",
            "backed up",
            "loaded",
            "rejected",
            "of which conflicts",
            "adds up",
            "problems",
        ],
        rows,
        ident="accounting",
        total=total,
    )
    bars = [
        Bar(
            row["table"],
            (
                Segment("loaded", row["loaded"] or 0),
                Segment("rejected", row["rejected"] or 0),
                Segment("backed up only (not mapped)", 0 if row["mapped"] else row["backed_up"] or 0),
            ),
        )
        for row in accounting["tables"]
    ]
    return r.section(
        "Accounting per table",
        table,
        r.paragraph(
            "Source rows: rows read from the legacy table. Backed up: rows in the encrypted backup. Loaded and "
            "rejected: rows the new system received, and rows it did not (each with a reason code, below); "
            "conflicts are rows the new system changed after cut-over, left untouched and counted as rejected. "
            "Tables that are not mapped (system and unknown tables) are backed up and purged, never loaded.",
            "muted",
        ),
        bar_chart("Rows per legacy table", bars),
        anchor="accounting-section",
    )


def _rejects(data: dict[str, Any]) -> str:
    rejects = data["rejects"]
    rows = []
    for table, entry in rejects["tables"].items():
        for reason, count in entry["by_reason"].items():
            examples = entry["examples"].get(reason) or []
            shown = "<br>".join(
                f"<code>{esc(e['legacy_key'])}</code>"
                + (f" {esc(e['field'])}" if e.get("field") else "")
                + (f" = <code>{esc(e['value'])}</code>" if e.get("value") is not None else "")
                + (f' <span class="muted">{esc(e["message"])}</span>' if e.get("message") else "")
                for e in examples
            )
            rows.append(
                [
                    _cell(table),
                    _cell(f"<code>{esc(reason)}</code>", raw=True),
                    _cell(meaning(reason)),
                    _cell(count, numeric=True),
                    _cell(shown, raw=True),
                ]
            )
    if not rows:
        body = r.paragraph("No row was rejected.")
    else:
        body = _table(
            ["legacy table", "reason", "what it means", "rows", "examples (legacy key, field = value)"],
            rows,
            ident="rejects-table",
            total=[_cell("all"), _cell(""), _cell(""), _cell(rejects["total"], numeric=True), _cell("")],
        )
    chart = bar_chart("Rejected rows by reason", simple_bars(list(rejects["by_reason"].items()), "rejected rows"))
    return r.section(
        "Rejected rows by reason",
        body,
        chart,
        r.paragraph(
            "Every rejected row stays in the backup and in the target's reject list (mig_rejects) with its "
            "legacy key, so it can be corrected at the source and carried over later. Every code is explained "
            "in the legend at the end of this report.",
            "muted",
        ),
        anchor="rejects",
    )


def _warnings(backup: dict[str, Any]) -> str:
    messages = backup.get("warning_messages")
    count = backup.get("warnings")
    if messages:
        return '<ul id="backup-warnings">' + "".join(f"<li>{esc(m)}</li>" for m in messages) + "</ul>"
    if count:  # a backup recorded before the messages were kept
        return esc(
            f"{count} (the backup run recorded their number only; `ts24-migrate backup verify` and the "
            "manifest list them)"
        )
    return "none"


def _flags(data: dict[str, Any]) -> str:
    flags = data.get("flags") or {"by_code": {}, "tables": {}}
    rows = []
    for table, entry in flags["tables"].items():
        for code, count in entry["rows_flagged"].items():
            examples = entry["examples"].get(code) or []
            shown = "<br>".join(
                f"<code>{esc(e['legacy_key'])}</code> {esc(e['field'])}: "
                f"<code>{_shown(e['original_value'])}</code> → <code>{_shown(e['loaded_value'])}</code>"
                for e in examples
            )
            rows.append(
                [
                    _cell(table),
                    _cell(f"<code>{esc(code)}</code>", raw=True),
                    _cell(meaning(code)),
                    _cell(count, numeric=True),
                    _cell(shown, raw=True),
                ]
            )
    if not rows:
        body = r.paragraph("No row was loaded with a data-quality flag.")
    else:
        body = _table(
            ["legacy table", "flag", "what it means", "rows", "examples (legacy key, field: original → loaded)"],
            rows,
            ident="flags-table",
        )
    return r.section(
        "Rows loaded with data-quality flags",
        body,
        r.paragraph(
            "These rows were loaded, but a value was repaired (legacy text encodings), normalized (whitespace, "
            "codes, tax codes, date forms), cleared or is doubtful; — is no value (NULL). The target's "
            "mig_flags table keeps, for every such value, the field, the original and the value loaded. Every "
            "code is explained in the legend at the end of this report.",
            "muted",
        ),
        anchor="flags",
    )


def _shown(value: Any) -> str:
    """A flagged value: escaped, — for none (NULL), an empty string as ''."""
    return "—" if value is None else esc(value) if value != "" else "''"


def _backup(data: dict[str, Any]) -> str:
    backup = data["backup"]
    signature = backup.get("signature") or {}
    verification = backup.get("verification") or {}
    rows = [
        ["backup id", esc(backup.get("backup_id"))],
        ["manifest fingerprint (SHA-256)", f'<code class="hash">{esc(backup.get("manifest_fingerprint"))}</code>'],
        [
            "rows, tables, parts",
            esc(
                f"{backup.get('rows')} rows in {backup.get('tables')} tables, "
                f"{backup.get('parts')} encrypted parts ({backup.get('ciphertext_bytes')} bytes)"
            ),
        ],
        ["attachment files", esc(backup.get("attachment_files"))],
        ["backup folder", f"<code>{esc(backup.get('backup_dir'))}</code>"],
        ["created", esc(f"{timestamp(backup.get('created_at'))} – {timestamp(backup.get('completed_at'))}")],
        [
            "signature",
            esc(f"{signature.get('algorithm')} by key {signature.get('key_id')}")
            + f'<br><code class="hash">{esc(signature.get("signature"))}</code>',
        ],
        [
            "signature holds (checked at validation)",
            _mark(signature.get("valid"))
            + (" " + esc("; ".join(signature.get("problems") or [])) if signature.get("problems") else ""),
        ],
        ["verification", _mark(backup.get("verified")) + " " + esc(verification.get("summary"))],
        [
            "verification run",
            esc(
                f"{verification.get('run_id')} ({verification.get('outcome')}, "
                f"{verification.get('mode')}, {timestamp(verification.get('finished_at'))}): "
                f"{verification.get('parts_checked')} parts, {verification.get('rows_checked')} "
                f"rows, {verification.get('files_checked')} files recounted"
            ),
        ],
        ["warnings during the backup", _warnings(backup)],
    ]
    table = _table(
        ["", ""], ([f"<th>{esc(label)}</th>", f"<td>{value}</td>"] for label, value in rows), ident="backup-table"
    )
    return r.section(
        "Backup",
        table,
        r.paragraph(
            "Offline check: `ts24-migrate backup verify SITE --identity CUSTODIAN_KEY`, or decrypt any part with "
            "the stock `age -d -i CUSTODIAN_KEY`.",
            "muted",
        ),
        anchor="backup",
    )


def _words(e: dict[str, Any]) -> str:
    """The expectation in plain words: as recorded, or (older runs) made from its type and column."""
    return e.get("description") or plain_words(e["expectation"], {"column": e.get("column")})


def _example(value: Any) -> str:
    return "(empty)" if value is None or str(value).strip() == "" else str(value)


def _finding(e: dict[str, Any]) -> str:
    count = e.get("unexpected_count")
    return (
        (f"{esc(count)} row does not" if count == 1 else f"{esc(count)} rows do not" if count else "")
        + (f" e.g. <code>{esc(', '.join(map(_example, e.get('examples') or [])))}</code>" if e.get("examples") else "")
        + (f' <span class="bad">{esc(e["error"])}</span>' if e.get("error") else "")
    )


def _backup_findings(data: dict[str, Any]) -> list[str]:
    """Objects, the attachment folder and NUL text as the backup recorded them (shared with the assessment)."""
    backup = data["backup"]
    return [
        objects_section(backup.get("object_items"), backup.get("objects_note")),
        attachments_section(
            backup.get("attachment_references"),
            rejects_by_reason=data["rejects"]["by_reason"],
            files_backed_up=backup.get("attachment_files"),
        ),
        nul_text_section([tuple(row) for row in backup.get("nul_text") or []]),
    ]


def _expectation_rows(tables: dict[str, Any]) -> list[list[str]]:
    """One row per expectation: every one for the target (all kept), the failed ones for the legacy
    profile (which keeps only those, and its counts)."""
    rows = []
    for table, suite in tables.items():
        listed = suite.get("expectations")
        if listed is None:
            listed = suite.get("failed_expectations") or []
        for e in listed:
            rows.append(
                [
                    _cell(table),
                    _cell(_words(e)),
                    _cell(_mark(bool(e["success"])), raw=True),
                    _cell(_finding(e) or "—", raw=True),
                ]
            )
        kept = len(listed)
        if kept < (suite.get("evaluated") or 0):
            rows.append(
                [
                    _cell(table),
                    _cell(f"{suite['evaluated'] - kept} more expectations"),
                    _cell(_mark(True), raw=True),
                    _cell("held (listed in the Data Docs)"),
                ]
            )
    return rows


def _expectations(data: dict[str, Any], folder: Path) -> str:
    target, legacy = data["expectations"]["target"], data["expectations"]["legacy"]
    headers = ["table", "expectation", "holds", "rows that do not hold, examples"]
    return r.section(
        "Data quality (Great Expectations)",
        f"<p>Target: {_mark(target.get('success'))} {esc(target.get('evaluated'))} expectations on "
        f"{esc(target.get('table_count'))} tables, {esc(target.get('failed'))} failed. "
        f"Great Expectations Data Docs: {_link(target.get('data_docs'), folder, 'target Data Docs')}</p>",
        _table(headers, _expectation_rows(target.get("tables") or {}), ident="target-expectations"),
        _list(target.get("notes") or [], "muted"),
        f"<p>Legacy profile (descriptive, never a verdict): {esc(legacy.get('evaluated'))} expectations on "
        f"{esc(legacy.get('table_count'))} tables, {esc(legacy.get('failed'))} describe dirty data. "
        f"Great Expectations Data Docs: {_link(legacy.get('data_docs'), folder, 'legacy profile Data Docs')}</p>",
        _table(headers, _expectation_rows(legacy.get("tables") or {}), ident="legacy-profile"),
        _list(legacy.get("notes") or [], "muted"),
        anchor="expectations",
    )


def _keys(entries: list[dict[str, Any]], count: int) -> str:
    shown = ", ".join(
        f"{esc(e['target_key'])}" + (f" (legacy {esc(e['legacy_key'])})" if e.get("legacy_key") else "")
        for e in entries[:KEYS_LISTED]
    )
    more = count - min(len(entries), KEYS_LISTED)
    return shown + (f" … and {more} more" if more > 0 else "")


def _parity(data: dict[str, Any]) -> str:
    parity = data["parity"]
    rows = []
    for table, entry in parity["tables"].items():
        counts = {kind: entry.get(f"{kind}_count", len(entry[kind])) for kind in ("missing", "extra", "changed")}
        rows.append(
            [
                _cell(table),
                _cell(entry["lineage_rows"], numeric=True),
                _cell(entry["target_rows"], numeric=True),
                *(_cell(counts[kind], numeric=True) for kind in ("missing", "extra", "changed")),
                _cell(_mark(entry["exact"]), raw=True),
            ]
        )
    listing = []
    for table, entry in parity["tables"].items():
        for kind in ("missing", "extra", "changed"):
            if entry[kind]:
                listing.append(
                    f"<li><b>{esc(table)}</b> {esc(kind)}: "
                    f"{_keys(entry[kind], entry.get(f'{kind}_count', len(entry[kind])))}</li>"
                )
    keys = f'<ul id="parity-keys">{"".join(listing)}</ul>' if listing else r.paragraph("No difference.")
    return r.section(
        "Parity: source (as loaded) vs target",
        _table(
            ["target table", "rows the load wrote", "rows in the target", "missing", "extra", "changed", "exact"],
            rows,
            ident="parity-table",
        ),
        keys,
        r.paragraph(
            "Missing: written by the load, gone from the target. Extra: a TS24 row in the target that no "
            "load wrote. Changed: its content differs from what the load wrote (row hash). Keys are the "
            "target's, with the legacy key where known.",
            "muted",
        ),
        _list(parity.get("notes") or [], "muted"),
        anchor="parity",
    )


def _dossiers(data: dict[str, Any]) -> str:
    statuses = data["dossiers_by_status"]
    table = r.table(["status", "dossiers"], [[s, n] for s, n in statuses.items()], numeric=(1,))
    return r.section(
        "Dossiers by status (as loaded)",
        table,
        bar_chart("Dossiers by status", simple_bars(list(statuses.items()), "dossiers")),
        anchor="dossiers",
    )


def _ledger(data: dict[str, Any]) -> str:
    ledger = data["ledger"]
    site = data["site_id"]
    return r.section(
        "Audit ledger",
        _table(
            ["", ""],
            [
                ["<th>head event (seq)</th>", f"<td>{esc(ledger.get('seq'))}</td>"],
                [
                    "<th>head hash</th>",
                    f'<td><code class="hash" id="ledger-head">{esc(ledger.get("hash"))}</code></td>',
                ],
                ["<th>ledger file</th>", f"<td><code>{esc(ledger.get('path'))}</code></td>"],
            ],
        ),
        r.paragraph(
            "The head as this validation concluded its checks; the ledger's next event is this run's own "
            f"outcome. Check offline that the ledger still holds it: `ts24-migrate -i INVENTORY audit verify "
            f"--site {site} --expect-head {ledger.get('hash')}`.",
            "muted",
        ),
        anchor="ledger",
    )


def _runs(data: dict[str, Any]) -> str:
    runs = [("validate", data["validation"]), *data["runs"].items()]
    rows = [
        [stage, run["run_id"], run["outcome"], timestamp(run["finished_at"])] if run else [stage, "none", "", ""]
        for stage, run in runs
    ]
    assessment = data.get("assessment") or {}
    parts = [r.table(["stage", "run id", "outcome", "finished"], rows)]
    abandoned = data.get("abandoned_runs") or []
    if abandoned:
        parts.append(
            r.paragraph(
                f"{len(abandoned)} run(s) of this site were killed and later marked abandoned "
                "(their process was gone); what they made durable was resumed by a later run: "
                + "; ".join(
                    f"{a['stage']} {a['run_id']} (started {timestamp(a['started_at'])}, "
                    f"noticed {timestamp(a['abandoned_at'])})"
                    for a in abandoned[:10]
                ),
                "muted",
            )
        )
    if assessment:
        parts.append(
            r.paragraph(
                f"Assessment: {assessment.get('tables')} tables, {assessment.get('rows')} rows; "
                f"{IN_FLIGHT_LABEL}: {assessment.get('in_flight_dossiers')}; "
                f"{RECEIVED_AFTER_CUTOVER_LABEL}: {assessment.get('received_after_cutover')}.",
                "muted",
            )
        )
    return r.section("Runs this report is built from", *parts, anchor="runs")


def _codes(data: dict[str, Any]) -> str:
    codes = data.get("codes") or {}
    shown = codes.get("in_this_report") or {}
    rows = [
        [
            _cell(f"<code>{esc(code)}</code>", raw=True),
            _cell(entry["action"]),
            _cell(entry.get("stage") or ""),
            _cell(entry.get("meaning") or meaning(code)),
            _cell("yes" if code in shown else ""),
        ]
        for code, entry in (codes.get("all") or {}).items()
    ]
    rows += [
        [
            _cell(f"<code>{esc(code)}</code>", raw=True),
            _cell(entry["action"]),
            _cell(""),
            _cell(meaning(code)),
            _cell("yes"),
        ]
        for code, entry in shown.items()
        if code not in (codes.get("all") or {})
    ]
    return r.section(
        "Reason and flag codes",
        r.paragraph(
            "reject: the row is not loaded; it is listed with the code among the rejected rows (and in the target's "
            "mig_rejects), and counts as rejected in the accounting. flag: the row is loaded and the code is added to "
            "its dq_flags column, which says which value was repaired, cleared or qualified; the target's mig_flags "
            "keeps the field, the original value and the value loaded, and the original also stays in the encrypted "
            "backup. Codes of the transform come from transform/reason_codes.py (also "
            "docs/reason-codes.md), those of the load from load/reasons.py."
        ),
        _table(["code", "action", "set by", "what it means", "in this report"], rows, ident="codes-table"),
        anchor="codes",
    )


def render_html(report, *, folder: Path) -> str:
    """The page for a SiteReport written into `folder` (links to Data Docs are relative to it)."""
    data = report.to_dict()
    validation = data["validation"]
    return r.page(
        f"Validation report of site {data['site_id']}",
        [
            _EXTRA_STYLE,
            _verdict(data),
            _personal_data(data),
            _reading_guide(),
            _accounting(data),
            _rejects(data),
            _flags(data),
            _backup(data),
            *_backup_findings(data),
            _expectations(data, Path(folder)),
            _parity(data),
            _dossiers(data),
            _ledger(data),
            _runs(data),
            _codes(data),
        ],
        subtitle=f"validate run {validation['run_id']} · finished {timestamp(validation['finished_at'])} · site "
        f"state {data['site_state']} · rebuilt {timestamp(data['rebuilt_at'])} from the control store",
    )
