"""`python -m transform > docs/reason-codes.md` regenerates the reason-code table."""

from .reason_codes import reason_codes_markdown

print(reason_codes_markdown(), end="")
