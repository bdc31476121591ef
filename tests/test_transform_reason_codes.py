"""REASON_CODES is the one source of the reason-code table; docs/reason-codes.md must match it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from transform import REASON_CODES
from transform.reason_codes import reason_codes_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_table_is_generated_from_reason_codes():
    assert (ROOT / "docs" / "reason-codes.md").read_text(encoding="utf-8") == reason_codes_markdown(), (
        "docs/reason-codes.md is stale: run `python -m transform > docs/reason-codes.md`"
    )


def test_the_documented_command_writes_exactly_that_table():
    out = subprocess.run([sys.executable, "-m", "transform"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout == reason_codes_markdown() and out.stderr == ""


def test_every_code_has_an_action_and_a_description_in_the_table():
    markdown = reason_codes_markdown()
    for code, (action, description) in REASON_CODES.items():
        assert action in ("reject", "flag") and description.endswith(".")
        assert f"| `{code}` | {action} |" in markdown
        assert code.isupper() and len(code) <= 48  # fits mig_rejects.reason_code


def test_the_readme_lists_every_flag_code():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [code for code, (action, _) in REASON_CODES.items() if action == "flag" and f"`{code}`" not in readme]
    assert not missing, f"README.md does not list the flag codes {missing}"
