"""What may go into an event's data: plain JSON figures, and never a secret.

The ledger is handed to auditors and kept for years, so a secret written into
it cannot be taken back. Stage code passes its figures as they are; this
module turns them into plain JSON (dates as ISO text, Decimal as numbers) and
refuses anything that looks like a secret, with a ValueError that names the
key but never repeats the value.

>>> prepare_event_data({"rows": 10, "day": dt.date(2025, 7, 1)})
{'day': '2025-07-01', 'rows': 10}
>>> prepare_event_data({"legacy_password": "x"})
Traceback (most recent call last):
...
ValueError: audit event data: key 'legacy_password' looks like a secret; secrets never go into the audit ledger
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
import re
import uuid
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from ts24_migrate.core.secrets import Secret

from .events import sorted_keys

# Key names are compared with case, '_', '-' and spaces removed: "Private-Key" -> "privatekey".
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "privatekey",
    "apikey",
    "accesstoken",
    "authtoken",
    "refreshtoken",
)
SECRET_KEY_NAMES = {"pwd", "token"}

_URL_PASSWORD = re.compile(r"//[^:/@\s]*:([^@\s/]+)@")
_ASSIGNED_PASSWORD = re.compile(r"(?i)\b(?:password|passwd|pwd)\s*=\s*([^;&\s]+)")
_KEY_MATERIAL = ("AGE-SECRET-KEY-1", "PRIVATE KEY-----")
REDACTED = "***"


def prepare_event_data(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Plain-JSON copy of `data` with sorted keys; ValueError if not JSON-able or secret-looking."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"audit event data must be a mapping of figures, not {type(data).__name__}")
    _reject_secrets(data, "")
    try:
        plain = json.loads(json.dumps(data, default=_plain, allow_nan=False))
    except ValueError as exc:
        if "Out of range float" in str(exc):
            raise ValueError("audit event data: NaN and infinity are not JSON figures") from None
        raise ValueError(f"audit event data: {exc}") from None
    except TypeError as exc:
        raise ValueError(f"audit event data: {exc}") from None
    prepared: dict[str, Any] = sorted_keys(plain)  # a copy of the mapping `data` (JSON object -> dict)
    return prepared


def reject_secret_text(text: str, where: str) -> None:
    """ValueError if `text` holds a URL password, a password assignment or private key material."""
    for pattern in (_URL_PASSWORD, _ASSIGNED_PASSWORD):
        for match in pattern.finditer(text):
            if match.group(1) != REDACTED:
                raise ValueError(
                    f"audit event {where} holds a password (use redact_url); secrets never go into the audit ledger"
                )
    if any(marker in text for marker in _KEY_MATERIAL):
        raise ValueError(f"audit event {where} holds private key material; secrets never go into the audit ledger")


def looks_like_secret_key(name: str) -> bool:
    squashed = re.sub(r"[^a-z0-9]", "", name.lower())
    return squashed in SECRET_KEY_NAMES or any(part in squashed for part in SECRET_KEY_PARTS)


def _reject_secrets(value: Any, where: str) -> None:
    if isinstance(value, Secret):
        raise ValueError(f"audit event data: {_name(where)} is a Secret; secrets never go into the audit ledger")
    if isinstance(value, Mapping):
        for key, item in value.items():
            key_text = str(key)
            # Checked before it is ever named in a message.
            reject_secret_text(key_text, f"data key under {where!r}" if where else "data key")
            path = f"{where}.{key_text}" if where else key_text
            if looks_like_secret_key(key_text):
                raise ValueError(
                    f"audit event data: key {path!r} looks like a secret; secrets never go into the audit ledger"
                )
            _reject_secrets(item, path)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            _reject_secrets(item, f"{where}[{index}]")
    elif isinstance(value, (str, PurePath)):
        reject_secret_text(str(value), f"data {_name(where)}")


def _name(where: str) -> str:
    return f"value {where!r}" if where else "value"


def _plain(value: Any) -> Any:
    """json.dumps fallback: the usual figure types as plain JSON."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError("Out of range float values are not JSON compliant")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (PurePath, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        raise TypeError("bytes are not figures; give a hash or a size instead")
    if hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("Out of range float values are not JSON compliant")
        return item
    raise TypeError(f"a value of type {type(value).__name__} is not JSON")
