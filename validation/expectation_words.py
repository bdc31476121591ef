"""Expectations in plain words, for auditors: "values of MA_SO_BHXH are 10 digits".

GX names an expectation by its type (`expect_column_values_to_match_regex`) and
keeps its arguments apart; an auditor needs one sentence. `plain_words` makes it
from the type and the arguments; gx_runner records it as the expectation's
description, so the report, the JSON and the Data Docs all say the same. The
formats of this project's suites are worded by hand (FORMAT_WORDS); any other
pattern is quoted as it is.

Example::

    >>> plain_words("expect_column_values_to_match_regex", {"column": "MA_SO_BHXH", "regex": r"^[0-9]{10}$"})
    'values of MA_SO_BHXH are 10 digits'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

SET_ITEMS_SHOWN = 8

# The formats the suites check (validation/target_suites.py, validation/legacy_profile.py).
FORMAT_WORDS: dict[str, str] = {
    r"^[0-9]{2}$": "are 2 digits",
    r"^[0-9]{5}$": "are 5 digits",
    r"^[0-9]{10}$": "are 10 digits",
    r"^[0-9]{2}([0-9]{2})?$": "are 2 or 4 digits",
    r"^([0-9]{9}|[0-9]{12})$": "are 9 or 12 digits",
    r"^[0-9]{10}(-[0-9]{3})?$": "are 10 digits, or 10 digits, a dash and 3 digits (a branch)",
    r"^[A-Z0-9]{1,15}$": "are 1 to 15 capital letters or digits",
    r"^[0-9a-f]{32}$": "are 32 lower-case hexadecimal digits",
    r"^[0-9a-fA-F]{32}$": "are 32 hexadecimal digits",
    r"^[0-9a-f]{64}$": "are 64 lower-case hexadecimal digits",
    r"^[0-9]{4}-(0[1-9]|1[0-2])$": "are a year and month written YYYY-MM",
    r"^(0[1-9]|1[0-2])/[0-9]{4}$": "are a month and year written MM/YYYY",
    r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$": "are dates written DD/MM/YYYY",
    r"^(([0-9]{2}/)?[0-9]{2}/)?[0-9]{4}$": "are dates written DD/MM/YYYY, MM/YYYY or YYYY",
}


def _values(values: Any) -> str:
    items = [str(v) for v in (values or [])]
    shown = ", ".join(items[:SET_ITEMS_SHOWN])
    return shown + (f" (and {len(items) - SET_ITEMS_SHOWN} more)" if len(items) > SET_ITEMS_SHOWN else "")


def _between(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"are between {low} and {high}"
    if low is not None:
        return f"are at least {low}"
    if high is not None:
        return f"are at most {high}"
    return "are any value"


def plain_words(kind: str, kwargs: Mapping[str, Any]) -> str:
    """One sentence for an expectation of type `kind` with arguments `kwargs`."""
    column = kwargs.get("column")
    of = f"values of {column}"
    if kind == "expect_column_values_to_not_be_null":
        return f"{column} is never empty"
    if kind == "expect_column_values_to_be_unique":
        return f"{of} are unique"
    if kind == "expect_column_values_to_be_in_set":
        return f"{of} are one of: {_values(kwargs.get('value_set'))}"
    if kind == "expect_column_values_to_match_regex":
        regex = str(kwargs.get("regex"))
        return f"{of} {FORMAT_WORDS.get(regex, f'match the pattern {regex}')}"
    if kind == "expect_column_values_to_be_between":
        return f"{of} {_between(kwargs.get('min_value'), kwargs.get('max_value'))}"
    if kind == "expect_table_row_count_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        return (
            "the table's rows are counted" if not high and not low else f"the table's row count {_between(low, high)}"
        )
    if kind == "expect_column_to_exist":
        return f"column {column} exists"
    words = kind.removeprefix("expect_").replace("_", " ")
    return f"{column}: {words}" if column else words


def describe(expectation: Expectation) -> None:
    """Give a GX expectation its plain-words description, unless it has one already."""
    if getattr(expectation, "description", None):
        return
    config = expectation.configuration
    expectation.description = plain_words(config.type, config.kwargs)
