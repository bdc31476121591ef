"""Make a Great Expectations Data Docs site open offline: no script, nothing fetched from the internet.

GX 1.x writes pages that load Bootstrap, jQuery, bootstrap-table, Vega and
Font Awesome from CDNs, and fill their tables from inline scripts: offline (where
auditors often are) the index page shows an empty table. The project's choice:
turn each page into plain, static HTML once it is built, rather than ship
copies of those libraries (Debian packages Bootstrap's stylesheet but not
bootstrap-table or Vega; a copy of scripts is one more thing to keep in step
with GX) or replace the Data Docs by our own pages (the auditor report already
lists every expectation in plain words; the Data Docs stay GX's own rendering,
which auditors know):

- each table that a script would fill (`$('#id').bootstrapTable({columns, data})`)
  is written out as an HTML table from the same columns and rows, with each
  row's link (`_table_row_link_path`) and its status in words;
- every script goes, and every stylesheet, image or font from the internet;
  links to the internet become plain text;
- Bootstrap 4's stylesheet comes from the Debian package libjs-bootstrap4
  (installed by the Makefile) when it is there, plus a small stylesheet of our own
  that shows every tab and writes the status icons as symbols.

Running it again on a converted site changes nothing (pages carry a marker).

Example::

    make_offline(Path("work/sites/hn-01/reports/<run>/data-docs/target"))
"""

from __future__ import annotations

import ast
import html
import os
import re
import shutil
from pathlib import Path
from typing import Any

MARKER = '<meta name="ts24-offline" content="static">'
STYLE_FILE = "ts24-offline.css"
BOOTSTRAP_FILE = "bootstrap.min.css"
# Where Debian's libjs-bootstrap4 puts Bootstrap 4's stylesheet.
BOOTSTRAP_CANDIDATES = (
    Path("/usr/share/javascript/bootstrap4/css/bootstrap.min.css"),
    Path("/usr/share/nodejs/bootstrap/dist/css/bootstrap.min.css"),
)

OFFLINE_STYLE = """/* ts24-migrate: the Data Docs as static pages (validation/data_docs_offline.py). */
.tab-content>.tab-pane{display:block!important;opacity:1!important;margin-bottom:2rem}
.modal,.ge-walkthrough-modal,.modal-backdrop{display:none!important}
.collapse{display:block!important}
.fas,.far,.fa{font-style:normal}
.fa-check-circle::before{content:"\\2714";color:#145a2a}
.fa-times::before,.fa-times-circle::before{content:"\\2718";color:#8a1616}
.fa-question-circle::before{content:"?"}
.fa-exclamation-triangle::before{content:"\\26A0"}
table.ts24-static{border-collapse:collapse;width:100%;margin:.5rem 0}
table.ts24-static th,table.ts24-static td{border:1px solid #d8dee8;padding:.25rem .5rem;vertical-align:top}
.ts24-status{font-weight:600;margin-left:.3rem}
"""

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.S | re.I)
_TABLE_CALL = re.compile(
    r"\$\(\s*'#(?P<id>[^']+)'\s*\)\.bootstrapTable\(\s*Object\.assign\(\s*\{\s*"
    r"columns:\s*(?P<columns>.*?),\s*data:\s*(?P<data>.*?),\s*toolbar:",
    re.S,
)
_REMOTE = r"""(?:https?:)?//[^"'\s>]+"""
_REMOTE_LINK_TAG = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']" + _REMOTE + r"[\"'][^>]*>", re.I)
_REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']" + _REMOTE + r"[\"'][^>]*>", re.I)
_REMOTE_ANCHOR = re.compile(r"<a\b([^>]*?)\bhref\s*=\s*[\"']" + _REMOTE + r"[\"']([^>]*)>", re.I)
_REMOTE_CSS_URL = re.compile(r"url\(\s*[\"']?" + _REMOTE + r"[\"']?\s*\)", re.I)
_SCRIPTED_BUTTON = re.compile(r"<button\b[^>]*\bonclick=[^>]*>.*?</button\s*>", re.S | re.I)  # dead without scripts
_SOURCE_MAP = re.compile(r"/\*#\s*sourceMappingURL=[^*]*\*/")


def _literal(text: str) -> Any:
    """GX writes the columns and rows as Python literals (single quotes, True/False)."""
    return ast.literal_eval(text.strip())


def _static_table(attributes: str, columns: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    fields = [c["field"] for c in columns if c.get("visible", True) not in (False, "false")]
    titles = {c["field"]: c.get("title", c["field"]) for c in columns}
    head = "".join(f"<th>{html.escape(str(titles[f]))}</th>" for f in fields)
    body = []
    for row in rows:
        cells = []
        for index, field in enumerate(fields):
            cell = str(row.get(field, ""))  # GX's cell HTML, as bootstrap-table would have inserted it
            if index == 0 and row.get("_validation_success_text"):
                cell += f'<span class="ts24-status">{html.escape(str(row["_validation_success_text"]))}</span>'
            if index == 0 and row.get("_table_row_link_path"):
                cell = f'<a href="{html.escape(str(row["_table_row_link_path"]))}">{cell}</a>'
            cells.append(f"<td>{cell}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table{attributes} data-ts24-static="1"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _fill_tables(page: str) -> str:
    """Write out every table a bootstrapTable call fills; a call we cannot read is an error."""
    for script in _SCRIPT.findall(page):
        if ".bootstrapTable(" not in script or "Object.assign" not in script:
            continue
        call = _TABLE_CALL.search(script)
        if call is None:
            raise ValueError("a Data Docs table is filled by a script this release cannot read")
        table_id = call.group("id")
        opening = re.search(r'<table\b(?P<attrs>[^>]*\bid="' + re.escape(table_id) + r'"[^>]*)>\s*</table>', page)
        if opening is None:
            raise ValueError(f"the Data Docs table {table_id} is missing from its page")
        attrs = re.sub(r'\s*data-toggle="table"', "", opening.group("attrs"))
        attrs = (
            attrs.replace('class="', 'class="ts24-static ', 1) if 'class="' in attrs else attrs + ' class="ts24-static"'
        )
        static = _static_table(attrs, _literal(call.group("columns")), _literal(call.group("data")))
        page = page[: opening.start()] + static + page[opening.end() :]
    return page


def _depth_prefix(page_path: Path, root: Path) -> str:
    depth = len(page_path.relative_to(root).parts) - 1
    return "../" * depth


def static_page(page: str, styles_prefix: str, *, bootstrap: bool) -> str:
    """One Data Docs page as static HTML; `styles_prefix` leads from the page to the site's root."""
    if MARKER in page:
        return page
    page = _fill_tables(page)
    page = _SCRIPT.sub("", page)
    page = _SCRIPTED_BUTTON.sub("", page)
    page = _REMOTE_LINK_TAG.sub("", page)
    page = _REMOTE_IMG.sub("", page)
    page = _REMOTE_ANCHOR.sub(lambda m: f"<a{m.group(1)}{m.group(2)}>", page)
    page = _REMOTE_CSS_URL.sub("none", page)
    local = "".join(
        f'<link rel="stylesheet" href="{styles_prefix}static/styles/{name}">'
        for name in ((BOOTSTRAP_FILE,) if bootstrap else ()) + (STYLE_FILE,)
    )
    head = re.search(r"<head[^>]*>", page, re.I)
    insert = MARKER + local
    return page[: head.end()] + insert + page[head.end() :] if head else insert + page


def _bootstrap_stylesheet() -> Path | None:
    return next((p for p in BOOTSTRAP_CANDIDATES if p.is_file()), None)


def make_offline(site: Path) -> list[Path]:
    """Convert every page of the Data Docs site at `site` in place; returns the pages converted."""
    site = Path(site)
    styles = site / "static" / "styles"
    styles.mkdir(parents=True, exist_ok=True)
    bootstrap = _bootstrap_stylesheet()
    if bootstrap is not None:
        text = _SOURCE_MAP.sub("", bootstrap.read_text(encoding="utf-8"))
        (styles / BOOTSTRAP_FILE).write_text(text, encoding="utf-8")
    have_bootstrap = (styles / BOOTSTRAP_FILE).is_file()
    (styles / STYLE_FILE).write_text(OFFLINE_STYLE, encoding="utf-8")
    for css in styles.glob("*.css"):
        text = css.read_text(encoding="utf-8")
        cleaned = _REMOTE_CSS_URL.sub("none", text)
        if cleaned != text:
            css.write_text(cleaned, encoding="utf-8")
    converted = []
    for page_path in sorted(site.rglob("*.html")):
        page = page_path.read_text(encoding="utf-8")
        static = static_page(page, _depth_prefix(page_path, site), bootstrap=have_bootstrap)
        if static != page:
            page_path.write_text(static, encoding="utf-8")
            converted.append(page_path)
    return converted


def copy_offline(source: Path, destination: Path) -> list[Path]:
    """Copy the Data Docs site `source` to `destination` (replaced) and make the copy offline."""
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, symlinks=False)
    os.chmod(destination, 0o700)  # legacy values: its owner only (the caller tightens the rest)
    return make_offline(destination)
