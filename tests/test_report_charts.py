"""Inline SVG bar charts: well-formed, to scale, every count written, text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validation.charts import LABEL_WIDTH, Bar, Segment, bar_chart, simple_bars

SVG = "{http://www.w3.org/2000/svg}"


def _rects(svg: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg).iter(f"{SVG}rect") if e.get("data-value") is not None]


def test_bars_are_to_scale_and_every_total_is_written():
    svg = bar_chart("Rejected rows by reason", simple_bars([("DATE_INVALID", 40), ("ORPHAN_UNIT", 10)], "rows"))
    rects = _rects(svg)
    assert [int(r.get("data-value")) for r in rects] == [40, 10]
    widths = [float(r.get("width")) for r in rects]
    assert widths[0] == pytest.approx(4 * widths[1], rel=0.01)
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert {"DATE_INVALID", "ORPHAN_UNIT", "40", "10", "Rejected rows by reason"} <= set(texts)


def test_stacked_segments_follow_each_other_with_a_legend():
    svg = bar_chart(
        "Rows per table",
        [
            Bar("HO_SO", (Segment("loaded", 90), Segment("rejected", 10))),
            Bar("HT_NHAT_KY", (Segment("loaded", 0), Segment("backed up only", 50))),
        ],
    )
    loaded, rejected, backed = _rects(svg)
    assert float(rejected.get("x")) == pytest.approx(float(loaded.get("x")) + float(loaded.get("width")), abs=0.11)
    assert float(backed.get("x")) == LABEL_WIDTH  # a zero segment takes no room
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert {"loaded", "rejected", "backed up only", "100", "50"} <= set(texts)


def test_a_tiny_count_stays_visible_and_labels_are_escaped():
    svg = bar_chart("<script>alert(1)</script>", simple_bars([("A&B <x>", 1), ("big", 100_000)], "rows"))
    assert "<script>" not in svg
    tiny, _ = _rects(svg)
    assert float(tiny.get("width")) >= 1.0
    assert "A&B <x>" in [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_nothing_to_show_and_negative_counts():
    svg = bar_chart("Dossiers by status", [])
    assert "nothing to show" in svg and _rects(svg) == []
    assert "nothing to show" in bar_chart("x", simple_bars([("a", 0)], "rows"))
    with pytest.raises(ValueError, match="negative"):
        bar_chart("x", simple_bars([("a", -1)], "rows"))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=10**9)), min_size=1, max_size=15
    )
)
def test_any_counts_and_labels_give_well_formed_svg_with_each_count(values):
    svg = bar_chart("chart", simple_bars(values, "rows"))
    root = ET.fromstring(svg)  # well-formed XML, whatever the labels hold
    if any(v for _, v in values):
        assert [int(r.get("data-value")) for r in _rects(svg)] == [v for _, v in values if v]
        widths = [float(r.get("width")) for r in _rects(svg)]
        assert max(widths) <= float(root.get("width"))
