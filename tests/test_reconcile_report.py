"""The reconciliation report: its figures against the demo's truth, its files, its burndown."""

from __future__ import annotations

import csv
import datetime as dt
import json
import stat

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reconcile_support import sqlite_site

from reconcile.burndown import BurndownPoint, burndown_svg, forecast
from reconcile.report import OUTREACH_CSV, report_html, write_reconciliation_report


@pytest.fixture
def site(tmp_path, sqlite_url):
    yield from sqlite_site(tmp_path, sqlite_url, baseline=False)


def test_findings_match_what_the_demo_planted(site):
    truth = site.truth
    result = site.reconcile(as_of=truth.world_now)

    flights = result.in_flight
    assert flights.count == truth.in_flight_dossiers
    assert list(flights.by_status.values()) == [truth.dossiers_by_status[str(s)] for s in range(4)]
    assert len(flights.overdue) == truth.overdue_in_flight
    assert sorted(str(d.legacy_id) for d in result.forbidden) == sorted(truth.received_after_cutover)
    assert {p["legacy_id"]: p["portal_dossier_no"] for p in result.duplicates} == truth.likely_duplicate_pairs
    reg = result.reregistration
    assert reg.must == len(truth.must_reregister)
    assert sorted(r["unit_code"] for r in reg.registered) == sorted(truth.reregistered)
    assert sorted(u["unit_code"] for u in reg.missing) == sorted(set(truth.must_reregister) - set(truth.reregistered))
    assert not result.account.drift


def test_reregistrations_filed_later_move_units_off_the_outreach_list(site):
    site.reconcile()
    step = site.advance(days=10, seed=4)
    assert step.new_reregistrations
    result = site.reconcile()
    missing = {u["unit_code"] for u in result.reregistration.missing}
    assert not missing & set(step.new_reregistrations)
    assert {r["unit_code"] for r in result.reregistration.registered} >= set(step.new_reregistrations)


def test_report_files_json_html_and_outreach_csv(site, tmp_path):
    site.reconcile()
    step = site.advance(days=7, seed=1)
    result = site.reconcile()
    paths = write_reconciliation_report(result, tmp_path / "report")

    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["summary"] == json.loads(json.dumps(result.summary(), default=str))
    assert [c["name"] for c in data["criteria"]] == [c.name for c in result.criteria]
    assert data["received_after_cutover"][-1]["legacy_id"] == step.forbidden_receipt
    assert data["in_flight"]["count"] == len(data["in_flight"]["dossiers"]) == result.in_flight.count
    assert len(data["burndown"]) == 1 and data["increment"]["backup_id"] == result.increment["backup_id"]

    html = paths["html"].read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<svg" in html and 'id="verdict"' in html and "NOT DRAINED" in html
    assert step.forbidden_receipt in html

    csv_path = paths["outreach_csv"]
    assert csv_path.name == OUTREACH_CSV
    assert stat.S_IMODE(csv_path.stat().st_mode) == 0o600
    with open(csv_path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["unit_code"] for r in rows] == [u["unit_code"] for u in result.reregistration.missing]
    assert rows and all(r["name"] for r in rows) and any(r["phone"] for r in rows)
    # Contact details are for the outreach file only: never in the JSON or the HTML report.
    for row in rows:
        for field in ("phone", "email", "contact_name"):
            if row[field]:
                assert row[field] not in paths["json"].read_text(encoding="utf-8")
                assert row[field] not in html


def test_a_dossier_number_holding_markup_is_shown_as_text(site):
    """Legacy values reach the page as text: a dossier number typed as `<script>` is escaped, never run."""
    with site.writable.begin() as conn:
        conn.execute(
            sa.text("UPDATE HO_SO SET SO_HO_SO = '<script>alert(1)</script>' || ID_HO_SO WHERE TRANG_THAI < 4")
        )
    result = site.reconcile(as_of=site.truth.world_now)
    assert result.in_flight.overdue and result.in_flight.overdue[0].number.startswith("<script>")
    html = report_html(result, None)
    assert (
        "<script" not in html
        and f"<td>&lt;script&gt;alert(1)&lt;/script&gt;{result.in_flight.overdue[0].legacy_id}</td>" in html
    )


def test_forecast_of_a_steady_burndown():
    start = dt.datetime(2025, 8, 1)
    points = [BurndownPoint(start + dt.timedelta(days=7 * i), 40 - 10 * i) for i in range(3)]
    prediction = forecast(points)
    assert prediction.drain_date == start + dt.timedelta(days=28)
    assert prediction.per_day == pytest.approx(10 / 7)
    assert forecast(points[:1]).drain_date is None
    assert forecast([*points, BurndownPoint(start + dt.timedelta(days=21), 25)]).drain_date is not None
    rising = [BurndownPoint(start, 5), BurndownPoint(start + dt.timedelta(days=1), 9)]
    assert forecast(rising).drain_date is None and "not decreasing" in forecast(rising).note
    drained = forecast([*points, BurndownPoint(start + dt.timedelta(days=30), 0)])
    assert drained.drain_date == start + dt.timedelta(days=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 5000)), min_size=1, max_size=12))
def test_forecast_is_never_before_the_last_run_and_the_chart_always_draws(samples):
    start = dt.datetime(2025, 7, 1)
    points = [BurndownPoint(start + dt.timedelta(hours=h), n) for h, n in sorted(samples)]
    prediction = forecast(points)
    if prediction.drain_date is not None:
        assert prediction.drain_date >= points[-1].as_of
    svg = burndown_svg(points, prediction)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and svg.count("<circle") == len(points)
