"""Self-contained HTML pages for auditors: no scripts, no external assets, no host paths.

Every stage report (assessment, validation, reconciliation) is built from the
same few pieces so they look alike and escape everything the same way.

Example::

    page("Assessment of hn-01", [section("Tables", table(["name", "rows"], [["HO_SO", 12]]))])
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .private_files import private_dir, write_private_text
from .report_paths import PathNames

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:72rem;
color:#1d2430;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d8dee8}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #d8dee8;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f2f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-size:1.3rem;font-weight:700;padding:.6rem 1rem;border-radius:.4rem;display:inline-block}
.pass{background:#e3f6e8;color:#145a2a}.fail{background:#fde4e4;color:#8a1616}.info{background:#eef3fb}
.muted{color:#5b6577;font-size:.88rem}code{background:#f2f5f9;padding:0 .2rem}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(v)}</td>' if i in numeric else f"<td>{esc(v)}</td>" for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def paragraph(text: str, css: str | None = None) -> str:
    cls = f' class="{esc(css)}"' if css else ""
    return f"<p{cls}>{esc(text)}</p>"


def verdict(passed: bool, text: str) -> str:
    return f'<div class="verdict {"pass" if passed else "fail"}" id="verdict">{esc(text)}</div>'


def page(title: str, sections: Sequence[str], *, subtitle: str | None = None) -> str:
    sub = f'<p class="muted">{esc(subtitle)}</p>' if subtitle else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>{sub}{''.join(sections)}"
        "</body></html>"
    )


def timestamp(value: Any) -> str:
    """Every moment in a report in one form: `2025-07-01 06:30:00 UTC`.

    Takes what the control store and the stages record: datetimes (naive ones are
    UTC) and their ISO texts (`2025-07-01T06:30:00Z`, `2025-07-01 06:30:00.123456`,
    `...+00:00`). Anything else is shown as it is; None as an em dash.
    """
    if value is None or value == "":
        return "—"
    moment = value
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def write_report(
    folder: Path,
    stem: str,
    data: dict[str, Any],
    html_text: str,
    markdown: str | None = None,
    *,
    names: PathNames | None = None,
) -> dict[str, Path]:
    """Write <stem>.json, <stem>.html (and .md); returns their paths.

    With `names`, every absolute path under the inventory's folders is written by its
    name from there (ts24_migrate/core/report_paths.py): reports travel to other machines.
    Reports describe legacy data: the folder is made 0700 and each file 0600, whatever
    the umask (ts24_migrate/core/private_files.py).
    """
    names = names or PathNames()
    private_dir(folder)
    paths = {"json": folder / f"{stem}.json", "html": folder / f"{stem}.html"}
    text = json.dumps(names.scrub(data), indent=2, ensure_ascii=False, default=str)
    write_private_text(paths["json"], names.scrub_text(text))
    write_private_text(paths["html"], names.scrub_text(html_text))
    if markdown is not None:
        paths["markdown"] = folder / f"{stem}.md"
        write_private_text(paths["markdown"], names.scrub_text(markdown))
    return paths
