"""The signed head of a ledger: "this ledger's latest event is seq N with hash H".

A hash chain shows any change *inside* the file, but not events cut from its
end: what remains is still a valid chain. So each append also replaces
``<ledger>.head`` (atomically: write, fsync, rename) with a statement signed
by the same key. Cutting events then leaves a head that names a missing
event, and a forged head needs the private key. Restoring an *older* head
file together with the cut stays possible; an external anchor (the head hash
printed in a certificate, `verify_ledger(expected_head=...)`) closes that gap.

The head's signature covers ``ts24-ledger-head/1\\n`` followed by the canonical
JSON of its fields without the signature; the prefix keeps a head statement
and an event from ever being mistaken for each other.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ts24_migrate.core.signing import SigningKey, canonical_json, verify_signature

from .events import FORMAT_VERSION, LedgerEvent, utc_timestamp

HEAD_SUFFIX = ".head"
HEAD_DOMAIN = b"ts24-ledger-head/1\n"


class HeadUnreadable(ValueError):
    """The head file exists but is not a head statement."""


@dataclass(frozen=True)
class HeadStatement:
    v: int
    seq: int
    hash: str
    time: str
    key_id: str
    signature: str = ""

    @classmethod
    def for_event(cls, event: LedgerEvent, key: SigningKey) -> HeadStatement:
        unsigned = cls(v=FORMAT_VERSION, seq=event.seq, hash=event.hash, time=utc_timestamp(), key_id=key.key_id)
        signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode("ascii")
        return cls(**{**asdict(unsigned), "signature": signature})

    def signed_bytes(self) -> bytes:
        content = {name: value for name, value in asdict(self).items() if name != "signature"}
        return HEAD_DOMAIN + canonical_json(content, utf8=True)

    def signature_problem(self, public_keys: dict[str, str]) -> str | None:
        """None when signed by one of `public_keys` (key id -> base64 key), else what is wrong."""
        public_key = public_keys.get(self.key_id)
        if public_key is None:
            return (
                f"signed by key id {self.key_id}, which is not among the trusted public keys "
                f"({', '.join(sorted(public_keys))})"
            )
        try:
            signature = base64.b64decode(self.signature, validate=True)
        except ValueError:
            return "its signature is not base64"
        if base64.b64encode(signature).decode("ascii") != self.signature:
            return "its signature is not written as the ledger writes it (edited)"
        if not verify_signature(public_key, self.signed_bytes(), signature):
            return f"its signature does not verify with key id {self.key_id} (forged or edited)"
        return None


def head_path(ledger_path: Path) -> Path:
    """``work/ledger/hn-01.jsonl`` -> ``work/ledger/hn-01.jsonl.head``."""
    ledger_path = Path(ledger_path)
    return ledger_path.with_name(ledger_path.name + HEAD_SUFFIX)


def read_head(ledger_path: Path) -> HeadStatement | None:
    """The head statement next to a ledger; None when there is none; HeadUnreadable when damaged."""
    path = head_path(ledger_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise HeadUnreadable(f"head file {path} cannot be read ({type(exc).__name__})") from None
    try:
        values: Any = json.loads(text)
        statement = HeadStatement(**values)
    except (ValueError, TypeError):
        raise HeadUnreadable(f"head file {path} is not a head statement (damaged or edited)") from None
    types_ok = (
        isinstance(statement.seq, int)
        and not isinstance(statement.seq, bool)
        and all(isinstance(getattr(statement, name), str) for name in ("hash", "time", "key_id", "signature"))
    )
    if not types_ok or statement.v != FORMAT_VERSION:
        raise HeadUnreadable(f"head file {path} is not a head statement (damaged or edited)")
    return statement


def write_head(ledger_path: Path, statement: HeadStatement) -> None:
    """Replace the head file atomically; the caller holds the ledger's lock."""
    path = head_path(ledger_path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(asdict(statement), separators=(",", ":")).encode("ascii") + b"\n"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)
