"""`report --out`: a folder an auditor opens offline, on another machine, years later.

A demo site is migrated and validated once for the module; `report --out` writes
its folder, which is then copied elsewhere (as handed to an auditor) and opened in
headless Chromium with no network: every section shows, the Great Expectations
Data Docs included (their index lists every suite, their pages the results), no
file asks for anything on the internet and none names a path of the pipeline host.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_support import SITE, chromium_dom, migrated_site, parse_page

from ts24_migrate.cli.main import main
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.reporting import timestamp
from validation.code_legend import code_legend

pytestmark = pytest.mark.slow

# What would make a browser fetch from the internet: src/href/url()/@import naming a host.
EXTERNAL = re.compile(
    rb"""(?:\b(?:src|href|srcset|action|data)\s*=\s*["']?\s*|url\(\s*["']?\s*|@import\s+["']?)"""
    rb"""(?:https?:)?//""",
    re.I,
)
SECTIONS = {
    "verdict": None,
    "reading": "How to read this report",
    "accounting-section": "Accounting per table",
    "rejects": "Rejected rows by reason",
    "backup": "Backup",
    "expectations": "Data quality (Great Expectations)",
    "parity": "Parity: source (as loaded) vs target",
    "dossiers": "Dossiers by status (as loaded)",
    "ledger": "Audit ledger",
    "runs": "Runs this report is built from",
    "codes": "Reason and flag codes",
}


class Headings(HTMLParser):
    """The texts of h1/h2 elements, and the links."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.links: list[str] = []
        self._in: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2"):
            self._in = []
        if tag == "a" and dict(attrs).get("href"):
            self.links.append(dict(attrs)["href"])

    def handle_endtag(self, tag):
        if tag in ("h1", "h2") and self._in is not None:
            self.headings.append(" ".join("".join(self._in).split()))
            self._in = None

    def handle_data(self, data):
        if self._in is not None:
            self._in.append(data)


def _headings(dom: str) -> Headings:
    parser = Headings()
    parser.feed(dom)
    return parser


@pytest.fixture(scope="module")
def handed_over(tmp_path_factory):
    """(site, the JSON `validate` printed, the report folder as copied to the auditor's machine)."""
    site = migrated_site(tmp_path_factory.mktemp("offline"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["-i", str(site.inventory), "--json", "validate", SITE]) == 0, err.getvalue()
        written = site.folder / "for-the-auditor"
        assert main(["-i", str(site.inventory), "--json", "report", SITE, "--out", str(written)]) == 0, err.getvalue()
    result = json.loads(out.getvalue().splitlines()[0])
    copied = tmp_path_factory.mktemp("auditor-machine") / "hn-report"
    shutil.copytree(written, copied)
    shutil.rmtree(written)  # nothing may lead back to where it was written
    yield site, result, copied
    site.app.close()


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_no_file_of_the_folder_names_the_host_or_fetches_from_the_internet(handed_over):
    site, _, copied = handed_over
    files = _files(copied)
    assert any(p.suffix == ".json" for p in files) and len([p for p in files if p.suffix == ".html"]) > 20
    host_paths = {str(site.folder), str(site.folder.resolve()), str(site.inventory.parent)}
    for path in files:
        content = path.read_bytes()
        for host_path in host_paths:
            assert host_path.encode() not in content, f"{path.relative_to(copied)} names {host_path}"
        found = EXTERNAL.search(content)
        assert found is None, f"{path.relative_to(copied)} fetches {content[found.start() : found.start() + 120]!r}"
        if path.suffix == ".html":
            assert b"<script" not in content, path.relative_to(copied)


def test_the_report_shows_every_section_offline_with_files_named_from_the_inventory(handed_over, tmp_path):
    site, result, copied = handed_over
    report = json.loads((copied / "validation-report.json").read_text(encoding="utf-8"))
    dom = chromium_dom(copied / "validation-report.html", tmp_path / "chromium", offline=True)
    page, headings = parse_page(dom), _headings(dom)
    assert page.texts["verdict"].startswith("PASSED")
    for anchor, heading in SECTIONS.items():
        assert anchor in page.texts, anchor
        assert heading is None or heading in headings.headings, heading
    # Files by their name from the inventory's folder, the same in the JSON and on the page.
    assert report["ledger"]["path"] == f"work/ledger/{SITE}.jsonl"
    assert report["backup"]["backup_dir"] == f"backups/{SITE}/{report['backup']['backup_id']}"
    assert report["backup"]["signature"]["file"] == report["backup"]["backup_dir"] + "/manifest.json.sig"
    assert report["recorded_paths"]["html"] == f"work/sites/{SITE}/reports/{result['run_id']}/validation-report.html"
    assert f"work/ledger/{SITE}.jsonl" in page.texts["ledger"]
    assert report["backup"]["backup_dir"] in page.texts["backup"]
    # The Data Docs are in the folder, linked relatively.
    for kind in ("target", "legacy"):
        assert report["expectations"][kind]["data_docs"] == f"data-docs/{kind}/index.html"
        assert f"data-docs/{kind}/index.html" in headings.links
        assert (copied / "data-docs" / kind / "index.html").is_file()
    assert "not included" not in page.texts["expectations"]


def test_expectations_are_in_plain_words_with_every_result(handed_over, tmp_path):
    _, _, copied = handed_over
    report = json.loads((copied / "validation-report.json").read_text(encoding="utf-8"))
    page = parse_page(chromium_dom(copied / "validation-report.html", tmp_path / "chromium", offline=True))
    header, *rows = page.tables["target-expectations"]
    assert header == ["table", "expectation", "holds", "rows that do not hold, examples"]
    target = report["expectations"]["target"]
    assert len(rows) == target["evaluated"] == sum(len(s["expectations"]) for s in target["tables"].values())
    words = {(table, text) for table, text, *_ in rows}
    assert ("insured_persons", "values of social_insurance_no are 10 digits") in words
    assert ("units", "values of tax_code are 10 digits, or 10 digits, a dash and 3 digits (a branch)") in words
    assert ("dossiers", "status is never empty") in words
    assert not any("expect_" in text for _, text in words)
    assert all(holds == "yes" for _, _, holds, _ in rows)
    # The legacy profile: what failed, in words, with its count (the demo's dirt).
    legacy_rows = page.tables["legacy-profile"][1:]
    failed = [r for r in legacy_rows if r[2] == "NO"]
    assert len(failed) == report["expectations"]["legacy"]["failed"] > 0
    assert ["NGUOI_LAO_DONG", "values of MA_SO_BHXH are 10 digits"] in [r[:2] for r in failed]
    assert all(re.match(r"\d+ rows? does? not", r[3]) or re.match(r"\d+ rows? do not", r[3]) for r in failed)


def test_every_code_is_explained_where_it_is_shown_and_in_the_legend(handed_over, tmp_path):
    _, _, copied = handed_over
    report = json.loads((copied / "validation-report.json").read_text(encoding="utf-8"))
    page = parse_page(chromium_dom(copied / "validation-report.html", tmp_path / "chromium", offline=True))
    legend = code_legend()
    header, *rejects, _total = page.tables["rejects-table"]
    assert header[:3] == ["legacy table", "reason", "what it means"]
    assert rejects and {r[1] for r in rejects} == set(report["rejects"]["by_reason"])
    for row in rejects:
        assert row[2] == " ".join(legend[row[1]]["meaning"].split())
    header, *codes = page.tables["codes-table"]
    shown = {row[0]: row for row in codes}
    assert set(shown) == set(legend)  # every reject and flag code of the transform and the load
    for code, entry in legend.items():
        assert shown[code][1] == entry["action"] and shown[code][3] == " ".join(entry["meaning"].split())
        assert (shown[code][4] == "yes") == (
            code in report["rejects"]["by_reason"] or code in report["flags"]["by_code"]
        )
    assert {"flag", "reject"} <= {row[1] for row in codes}
    header, *flagged = page.tables["flags-table"]  # the flags section: each code with its meaning too
    assert header[:4] == ["legacy table", "flag", "what it means", "rows"]
    assert flagged and all(row[2] == " ".join(legend[row[1]]["meaning"].split()) for row in flagged)


def test_backup_warnings_are_listed_and_every_moment_is_written_one_way(handed_over, tmp_path):
    site, _, copied = handed_over
    report = json.loads((copied / "validation-report.json").read_text(encoding="utf-8"))
    dom = chromium_dom(copied / "validation-report.html", tmp_path / "chromium", offline=True)
    page = parse_page(dom)
    backup_run = site.app.control_store.latest_run(SITE, "backup")
    messages = backup_run.figures["warning_messages"]
    assert messages and len(messages) == backup_run.figures["warnings"]  # the demo has missing files
    assert [m for m in messages if m in page.texts["backup-warnings"]] == messages
    # The report's own moments (the sections it writes them in) all read 'YYYY-MM-DD HH:MM:SS UTC'.
    own = " ".join([page.texts["backup"], page.texts["runs"], dom.split("<h1>", 1)[1].split("</p>", 1)[0]])
    moments = re.findall(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}[^ ]*(?: UTC)?", own)
    assert len(moments) >= 8
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", m) for m in moments), moments
    assert timestamp(report["validation"]["finished_at"]) in own


def test_the_data_docs_open_offline_with_their_index_listing_and_results(handed_over, tmp_path):
    _, _, copied = handed_over
    report = json.loads((copied / "validation-report.json").read_text(encoding="utf-8"))
    for kind in ("target", "legacy"):
        index = copied / "data-docs" / kind / "index.html"
        dom = chromium_dom(index, tmp_path / f"chromium-{kind}", offline=True)
        listing = parse_page(dom)
        tables = [t for name, t in listing.tables.items() if t and t[0] and "Expectation Suite" in t[0]]
        assert tables, f"{kind} Data Docs index lists no validation"
        (validations,) = [t for t in tables if "Status" in t[0]]
        suites = {row[-1] for row in validations[1:]}
        assert suites == {f"{kind}.{table}" for table in report["expectations"][kind]["tables"]}
        if kind == "target":
            assert all(row[0].endswith("Success") for row in validations[1:])
        else:
            assert any(row[0].endswith("Failed") for row in validations[1:])  # the dirty legacy data
        links = [link for link in _headings(dom).links if link.startswith("validations/")]
        assert len(links) == len(suites) and all((index.parent / link).is_file() for link in links)
    # A validation page: the results in plain words, rendered without network.
    page = next((copied / "data-docs" / "target" / "validations" / "target" / "insured_persons").rglob("*.html"))
    text = chromium_dom(page, tmp_path / "chromium-page", offline=True)
    assert "values of social_insurance_no are 10 digits" in text and "Evaluated Expectations" in text


def test_path_names_keep_host_folders_out_of_any_text(tmp_path):
    base = tmp_path / "site"
    names = PathNames.for_inventory_folders(
        {"inventory": str(base), "work": str(base / "work"), "backups": "/srv/ts24/backups"}
    )
    data = {
        "ledger": str(base / "work" / "ledger" / "hn-01.jsonl"),
        "note": f"{base}/attachments/a.pdf is gone",
        "list": ["/srv/ts24/backups/hn-01/b1", f"{base}-other/x", str(base)],
    }
    assert names.scrub(data) == {
        "ledger": "work/ledger/hn-01.jsonl",
        "note": "attachments/a.pdf is gone",
        "list": ["backups/hn-01/b1", f"{base}-other/x", "."],
    }


def test_every_report_of_the_site_names_its_files_from_the_inventory(handed_over, capsys):
    """Assessment and reconciliation reports too (HTML, JSON, Markdown), written where the pipeline runs."""
    site, _, _ = handed_over
    for command in (["assess", SITE], ["reconcile", "run", SITE]):
        assert main(["-i", str(site.inventory), "--json", *command]) == 0, capsys.readouterr().err
    capsys.readouterr()
    reports = site.app.reports_dir(SITE)
    written = {p.name for p in reports.rglob("*") if p.is_file()}
    assert {
        "assessment.html",
        "assessment.json",
        "assessment.md",
        "reconciliation.html",
        "reconciliation.json",
        "validation-report.json",
    } <= written
    host_paths = {str(site.folder), str(site.folder.resolve())}
    for path in reports.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(h.encode() in content for h in host_paths), path.relative_to(reports)
    assessment = json.loads(next(reports.rglob("assessment.json")).read_text(encoding="utf-8"))
    if assessment.get("server", {}).get("kind") == "sqlite":  # the identity names the file, from the inventory
        assert not assessment["server"]["database"].startswith("/")
