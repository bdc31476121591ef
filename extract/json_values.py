"""Typed JSON for legacy values that a manifest or journal must give back exactly.

Key ranges and watermarks are written to JSON and read back to resume a
keyset read or to start a later delta run, so `from_json_value(json_value(v))`
must equal `v` with the same Python type. Plain JSON already does that for
None, bool, int and str; other types get a one-key object.

Example::

    json_value(datetime.datetime(2025, 7, 1, 8, 30))   # {'datetime': '2025-07-01T08:30:00.000000'}
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat(timespec="microseconds")}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"time": value.isoformat(timespec="microseconds")}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes_hex": bytes(value).hex()}
    raise TypeError(f"no JSON form for {type(value).__name__}")


_DECODERS: dict[str, Callable[[str], object]] = {
    "float": float,
    "decimal": decimal.Decimal,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "bytes_hex": bytes.fromhex,
}


def from_json_value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError(f"not a typed JSON value: {value!r}")
        ((kind, text),) = value.items()
        if kind not in _DECODERS:
            raise ValueError(f"unknown typed JSON value kind {kind!r}")
        return _DECODERS[kind](text)
    return value


def json_row(values: Any) -> list[Any] | None:
    return None if values is None else [json_value(v) for v in values]


def from_json_row(values: list[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(from_json_value(v) for v in values)
