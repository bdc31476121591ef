"""HTML renderings of the plan and the certificate: Jinja2 templates over the signed documents.

The HTML is for people; the JSON next to it is what is signed and verified.
Templates live in purge/templates/ and extend core's base layout (ts24_migrate/core/reporting.py);
everything is escaped.

Example::

    write_html(folder / "plan.html", "plan.html.j2", document=plan_document, plan_hash=h)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ts24_migrate.core.private_files import write_private_text
from ts24_migrate.core.reporting import templates


def _size(value: Any) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    return str(value)


_ENVIRONMENT = templates("purge")  # purge/templates/, then core's base layout
_ENVIRONMENT.filters["size"] = _size


def render(template: str, **context: Any) -> str:
    return _ENVIRONMENT.get_template(template).render(**context)


def write_html(path: Path, template: str, **context: Any) -> Path:
    return write_private_text(path, render(template, **context))  # plans name files and tables: owner only
