"""Bar charts as inline SVG for the validation report: no script, no external asset.

An auditor reads the report offline, perhaps years later, perhaps printed:
the charts are plain SVG elements inside the HTML, drawn from the same
figures as the tables beside them, with every number written next to its bar
(a chart is a picture of the table, never a second source).

A bar is made of segments (e.g. loaded, rejected); a chart with one segment
name is a plain bar chart. Bars share one scale, so lengths compare.

Example::

    svg = bar_chart("Rejected rows by reason", [Bar("DATE_INVALID", (Segment("rejected", 7),))])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ts24_migrate.core.reporting import esc

# Colour-blind-safe palette (Okabe-Ito), in the order segments first appear.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
ROW_HEIGHT = 22
BAR_HEIGHT = 14
LABEL_WIDTH = 270  # room for a legacy table name or a reason code (about 34 characters)
VALUE_WIDTH = 80
TOP = 30  # title
LEGEND_HEIGHT = 22
# Characters XML 1.0 does not allow: an SVG must stay well-formed whatever a legacy name holds.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Segment:
    name: str
    value: int


@dataclass(frozen=True)
class Bar:
    label: str
    segments: tuple[Segment, ...]

    @property
    def total(self) -> int:
        return sum(s.value for s in self.segments)


def simple_bars(values: Sequence[tuple[str, int]], segment: str) -> list[Bar]:
    """One single-segment bar per (label, value)."""
    return [Bar(label, (Segment(segment, value),)) for label, value in values]


def _colours(bars: Sequence[Bar]) -> dict[str, str]:
    names: list[str] = []
    for bar in bars:
        for segment in bar.segments:
            if segment.name not in names:
                names.append(segment.name)
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _text(value: object) -> str:
    return esc(_NOT_XML.sub("\ufffd", str(value)))


def _label(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(title: str, bars: Sequence[Bar], *, width: int = 720) -> str:
    """Horizontal (stacked) bars with their totals written at the end; a note when empty."""
    if any(s.value < 0 for bar in bars for s in bar.segments):
        raise ValueError("bar chart values are counts and cannot be negative")
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_text(title)}" class="chart" width="{width}"'
    )
    if not bars or all(bar.total == 0 for bar in bars):
        return (
            f'{head} height="{TOP + 24}" viewBox="0 0 {width} {TOP + 24}"><title>{_text(title)}</title>'
            f'<text x="0" y="18" font-weight="bold">{_text(title)}</text>'
            f'<text x="0" y="{TOP + 14}" fill="#5b6577">nothing to show (all zero)</text></svg>'
        )
    colours = _colours(bars)
    legend = len(colours) > 1
    height = TOP + len(bars) * ROW_HEIGHT + (LEGEND_HEIGHT if legend else 0) + 6
    scale_width = width - LABEL_WIDTH - VALUE_WIDTH
    largest = max(bar.total for bar in bars)
    parts = [
        f'{head} height="{height}" viewBox="0 0 {width} {height}"><title>{_text(title)}</title>',
        f'<text x="0" y="18" font-weight="bold">{_text(title)}</text>',
    ]
    for row, bar in enumerate(bars):
        y = TOP + row * ROW_HEIGHT
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR_HEIGHT - 2}" text-anchor="end" '
            f'font-size="11">{_text(_label(bar.label))}</text>'
        )
        x = float(LABEL_WIDTH)
        for segment in bar.segments:
            length = scale_width * segment.value / largest
            if segment.value:
                # Every non-zero count stays visible, however small beside the largest.
                length = max(length, 1.0)
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
                    f'fill="{colours[segment.name]}" data-value="{segment.value}">'
                    f"<title>{_text(bar.label)}: {segment.value} {_text(segment.name)}</title></rect>"
                )
            x += length
        parts.append(f'<text x="{x + 6:.1f}" y="{y + BAR_HEIGHT - 2}" font-size="12">{bar.total}</text>')
    if legend:
        y = TOP + len(bars) * ROW_HEIGHT + 4
        x = LABEL_WIDTH
        for name, colour in colours.items():
            parts.append(
                f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>'
                f'<text x="{x + 16}" y="{y + 11}" font-size="12">{_text(name)}</text>'
            )
            x += 24 + 8 * len(name)
    parts.append("</svg>")
    return "".join(parts)
