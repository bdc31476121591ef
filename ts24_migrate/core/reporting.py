"""Self-contained HTML pages for auditors: no scripts, no external assets, no host paths.

Every page of the project (assessment, validation, reconciliation, the site's
latest page, the fleet status, the purge plan and certificate, the certificate
summary) is a Jinja2 template that extends core's `base.html.j2`: one layout,
one stylesheet (`report.css.j2`, inlined: a page travels alone), the same
pieces (`report_macros.html.j2`: table, section, paragraph, verdict, mark).
A report is its data plus its template: each package keeps its templates in
its own `templates/` folder and renders them with `templates(package)`;
every value is escaped (autoescape), and a name missing from the data is an
error, never an empty cell (StrictUndefined).

Example::

    html = render("extract", "assessment.html.j2", title="Assessment of site hn-01", tables=[...])
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .private_files import private_dir, write_private_text
from .report_paths import PathNames

CORE_TEMPLATES = "ts24_migrate.core"  # its templates/ folder: base.html.j2, report.css.j2, report_macros.html.j2


def esc(value: Any) -> str:
    """A value escaped for HTML or SVG text (None as nothing), for markup built in Python (charts)."""
    return html.escape("" if value is None else str(value), quote=True)


def _blank(value: Any) -> Any:
    """None is shown as nothing, as `esc` shows it (a missing figure is not the word "None")."""
    return "" if value is None else value


@functools.cache
def templates(*packages: str) -> jinja2.Environment:
    """The templates of `packages` (each its `templates/` folder, first found wins), then core's.

    Core names no stage package: each passes its own name. One environment per
    tuple of packages, made once; a package may add its filters to it.
    """
    loaders = [jinja2.PackageLoader(package, "templates") for package in (*packages, CORE_TEMPLATES)]
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,  # every template is HTML (or its stylesheet): escape every value
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_blank,
    )
    environment.filters["timestamp"] = timestamp
    return environment


def render(package: str, template: str, /, **context: Any) -> str:
    """A page: `template` of `package` rendered with `context` (the report's data)."""
    return templates(package).get_template(template).render(**context)


def fragment(package: str, template: str, macro: str, /, *args: Any, **kwargs: Any) -> Markup:
    """One macro of a template, rendered: a section that several pages share (already escaped)."""
    return Markup(getattr(templates(package).get_template(template).module, macro)(*args, **kwargs))


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
