"""One audit ledger event: its fields, its canonical bytes, its hash and signature.

The ledger is a JSON-lines file; this module fixes its format so that an
auditor can check it with any JSON library and any Ed25519 implementation:

- each line is one event, the fields in this order, compact JSON (``","`` and
  ``":"`` separators, no spaces), UTF-8 (non-ASCII kept as is), keys inside
  ``data`` sorted, and a final ``\\n``::

    {"v":1,"seq":1,"time":"2025-07-01T08:00:00.000000Z","site":"hn-01","stage":"backup",
     "event":"backup_verified","run_id":"...","data":{"parts":14,"rows":120345},
     "prev_hash":null,"key_id":"3f1c...","hash":"9a0b...","signature":"base64..."}

- ``hash`` is SHA-256 (hex) of the event's *content*: every field but ``hash``
  and ``signature``, serialized as JSON with sorted keys at every level and
  the same compact separators (``ts24_migrate.core.signing.canonical_json(content, utf8=True)``); in Python:
  ``json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()``;
- ``signature`` is the Ed25519 signature (base64) of those same content bytes,
  by the key whose id is ``key_id`` (see ts24_migrate.core.keys.key_id_of);
- ``prev_hash`` is the ``hash`` of the event with the previous ``seq``
  (``null`` for seq 1), which chains the events: changing, removing, inserting
  or reordering one breaks the chain at that point.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ts24_migrate.core.signing import canonical_json

FORMAT_VERSION = 1
# The order of the fields in a ledger line (the hash uses sorted keys instead).
LINE_FIELDS = (
    "v",
    "seq",
    "time",
    "site",
    "stage",
    "event",
    "run_id",
    "data",
    "prev_hash",
    "key_id",
    "hash",
    "signature",
)
UNSIGNED_FIELDS = ("hash", "signature")


@dataclass(frozen=True)
class LedgerEvent:
    """One event as written in the ledger (see the module docstring for the format)."""

    seq: int
    time: str
    site: str
    stage: str
    event: str
    run_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    prev_hash: str | None = None
    key_id: str = ""
    hash: str = ""
    signature: str = ""
    v: int = FORMAT_VERSION

    @property
    def at(self) -> dt.datetime:
        """The event time as an aware UTC datetime."""
        return dt.datetime.fromisoformat(self.time.replace("Z", "+00:00"))

    @property
    def signature_bytes(self) -> bytes:
        return base64.b64decode(self.signature)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        return {name: values[name] for name in LINE_FIELDS}

    def content(self) -> dict[str, Any]:
        """The fields that the hash and the signature cover."""
        return {name: value for name, value in self.to_dict().items() if name not in UNSIGNED_FIELDS}

    def content_bytes(self) -> bytes:
        return canonical_json(self.content(), utf8=True)

    def computed_hash(self) -> str:
        return hashlib.sha256(self.content_bytes()).hexdigest()

    def line(self) -> bytes:
        """The exact bytes of this event's ledger line, final newline included."""
        return line_bytes(self.to_dict())

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LedgerEvent:
        return cls(**{name: values[name] for name in LINE_FIELDS})


def line_bytes(values: dict[str, Any]) -> bytes:
    """A ledger line: the fields in LINE_FIELDS order, data with sorted keys, compact, newline."""
    ordered = {name: (sorted_keys(values[name]) if name == "data" else values[name]) for name in LINE_FIELDS}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"


def sorted_keys(value: Any) -> Any:
    """`value` with the keys of every nested dict in sorted order (lists keep their order)."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


def utc_timestamp(moment: dt.datetime | None = None) -> str:
    """UTC time with microseconds and a Z, e.g. '2025-07-01T08:00:00.000000Z'."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
