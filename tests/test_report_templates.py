"""Every page is a Jinja2 template over core's base layout: one stylesheet, every value escaped, nothing fetched.

The pages are rendered from their data as the stages record it, with legacy
values that hold markup (a table named `<script>...`, a file path with quotes):
the page shows them as text, never as markup. A template that names a value the
data lacks fails loudly instead of writing an empty cell.
"""

from __future__ import annotations

import datetime as dt
import re

import jinja2
import pytest
import sqlalchemy as sa

from extract.assessment import assess_site
from extract.assessment_report import render_html as assessment_html
from extract.findings_report import attachments_section, nul_text_section, objects_section
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.reporting import render
from ts24_migrate.core.secrets import Secret
from ts24_migrate.demo import generate_site
from ts24_migrate.runs.certificates import summary_html
from ts24_migrate.runs.latest import _html as latest_html

HOSTILE = "<script>alert(1)</script> & \"quoted\" 'single'"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quoted&#34; &#39;single&#39;"
STYLESHEET = "body{font-family:system-ui"  # the first rule of ts24_migrate/core/templates/report.css.j2


def _one_self_contained_page(html: str, title: str) -> None:
    """The base layout's page: one stylesheet inline, no script, nothing fetched from elsewhere."""
    assert html.startswith("<!DOCTYPE html>") and html.count("<style>") == 1 and html.count(STYLESHEET) == 1
    assert f"<title>{title}</title>" in html and f"<h1>{title}</h1>" in html
    assert "<script" not in html
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html) and "@import" not in html and "url(" not in html


def _index(site_id: str = "hn-01") -> dict:
    return {
        "site_id": site_id,
        "state": "LOADED",
        "backup": {"backup_id": f"b-1 {HOSTILE}", "verification": "verified"},
        "next": {"who": "custodian", "command": f"ts24-migrate backup verify {HOSTILE}", "why": HOSTILE},
        "stages": [
            {
                "stage": "load",
                "run_id": f"run-1 {HOSTILE}",
                "outcome": "failed",
                "finished_at": None,
                "summary": f"failed: {HOSTILE}",
                "reports": {"html": '../reports/run-1/load "x" <y>.html', "data docs": "../reports/run-1/data-docs"},
            },
            {
                "stage": "assess",
                "run_id": "run-0",
                "outcome": "succeeded",
                "finished_at": "t",
                "summary": "",
                "reports": {},
            },
        ],
    }


def test_the_latest_page_escapes_every_value_and_keeps_its_links_relative():
    html = latest_html(_index())
    _one_self_contained_page(html, "Site hn-01: LOADED")
    assert html.count(ESCAPED) == 5  # backup, command, why, run id, summary
    assert 'href="../reports/run-1/load &#34;x&#34; &lt;y&gt;.html">html</a>' in html
    assert 'href="../reports/run-1/data-docs">data docs</a>' in html
    assert "<td>-</td>" in html  # a run without a report says so
    assert ">None<" not in html  # a run not finished has no time, not the word None


def test_a_site_id_with_markup_is_escaped_in_the_title():
    html = latest_html(_index(site_id=HOSTILE))
    assert f"<title>Site {ESCAPED}: LOADED</title>" in html and "<script" not in html


def test_the_certificate_summary_escapes_every_value():
    summary = {
        "sites": [
            {"site_id": HOSTILE, "office": "01", "state": "PURGED", "certified": False},
            {
                "site_id": "hn-01",
                "office": "01",
                "state": "CERTIFIED",
                "certified": True,
                "date": "2026-01-02",
                "server": {"kind": "mssql", "host": HOSTILE, "port": 1433, "database": "TS24"},
                "certificate_sha256": "ab" * 32,
                "media_attestation": "pending",
                "handover": "pending",
            },
        ],
        "total": 2,
        "certified": 1,
        "retired": 0,
        "media_pending": 1,
        "handover_pending": 1,
    }
    html = summary_html(summary)
    _one_self_contained_page(html, "Certificates of sanitization")
    assert f"<td>{ESCAPED}</td><td>PURGED</td>" in html
    assert f"<td>mssql {ESCAPED}:1433 TS24</td>" in html
    assert "1 of 2 site(s) certified; 0 handed over" in html


def test_the_shared_findings_sections_escape_legacy_names_and_paths():
    objects = objects_section(
        [{"kind": "view", "name": HOSTILE, "table": "HO_SO", "fingerprint": None, "definition_bytes": 12}],
        note=HOSTILE,
    )
    assert f"<td>{ESCAPED}</td>" in objects and f'<p class="bad">{ESCAPED}</p>' in objects
    assert "none (definition not readable)" in objects and 'id="objects-table"' in objects
    references = {
        "files_in_folder": 3,
        "referenced": 2,
        "missing": [{"table": "HO_SO_FILE", "key": "7", "path": f"2020/{HOSTILE}.pdf"}],
        "unreferenced": [],
    }
    attachments = attachments_section(references, rejects_by_reason={}, files_backed_up=3)
    assert f"<code>HO_SO_FILE 7: 2020/{ESCAPED}.pdf</code>" in attachments
    assert 'id="attachments-missing"' in attachments and "<script" not in attachments
    nul = nul_text_section([(HOSTILE, "TEN", 2)])
    assert f'<td>{ESCAPED}</td><td>TEN</td><td class="num">2</td>' in nul
    assert "<script" not in objects + attachments + nul


def test_the_assessment_page_escapes_a_legacy_table_and_column_named_with_markup(tmp_path):
    legacy_file = tmp_path / "legacy.sqlite"
    generate_site(sa.create_engine(f"sqlite:///{legacy_file}"), tmp_path / "files", seed=3, scale=0.02)
    writer = sa.create_engine(f"sqlite:///{legacy_file}")
    with writer.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "<script>alert(1)</script>" ("<b>x</b>" TEXT)')
        conn.exec_driver_sql("INSERT INTO \"<script>alert(1)</script>\" VALUES ('<i>y</i>')")
    writer.dispose()
    engine = legacy_engine(Secret(f"sqlite:///{legacy_file}"))
    with engine.connect() as conn:
        assessment = assess_site(conn, site_id="demo", cutover=dt.date(2025, 7, 1))
    engine.dispose()
    html = assessment_html(assessment)
    _one_self_contained_page(html, "Assessment of site demo")
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in html
    assert "<h2>Columns of &lt;script&gt;alert(1)&lt;/script&gt;</h2>" in html
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in html and "<b>x</b>" not in html
    assert "NONE (no primary key)" in html


def test_a_template_naming_a_value_the_data_lacks_fails_instead_of_writing_nothing():
    with pytest.raises(jinja2.UndefinedError, match="next"):
        render("ts24_migrate.runs", "latest.html.j2", title="Site x", backup=None, stages=[])
