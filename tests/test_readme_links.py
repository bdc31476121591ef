"""The README and docs/ link only to files of this repository (and to their own headings)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_stays_in_the_repository_and_resolves():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
        for target in LINK.findall(text):
            assert "://" not in target, f"{doc.name} links outside the repository: {target}"
            path, _, fragment = target.partition("#")
            if not path:
                assert fragment in anchors, f"{doc.name}: no heading for #{fragment}"
                continue
            resolved = (doc.parent / path).resolve()
            assert resolved.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
            assert resolved.exists(), f"{doc.name} links to a missing file: {target}"


def test_readme_keeps_its_guide_sections():
    headings = re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(encoding="utf-8"), re.M)
    for expected in (
        "Quick start: two commands",
        "Configuration: `sites.yaml`",
        "Commands",
        "Reading the reports",
        "Running on a Prefect server",
        "Troubleshooting",
        "Known limits",
    ):
        assert expected in headings, expected
