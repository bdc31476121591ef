"""The audit ledger: an append-only, hash-chained, signed JSON-lines file per site.

Every stage transition is appended as one event (format: audit/events.py).
Appends are safe with several writers, threads or processes: each append takes
an exclusive lock on the file (fcntl.flock), reads the last event under that
lock, chains to it, writes one line and fsyncs before releasing the lock.

Next to the ledger, ``<ledger>.head`` holds a signed statement of the latest
seq and hash. It is what lets `verify_ledger` notice events cut from the end
of the file, which the chain alone cannot show.

Example::

    ledger = Ledger(work / "ledger" / "hn-01.jsonl", load_signing_key(Path("keys/signing.key")))
    event = ledger.append("hn-01", "backup", "backup_verified", {"parts": 14, "rows": 120345}, run_id=run)
    ledger.head_hash() == event.hash  # True
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ts24_migrate.core.durable import fsync_dir, write_all
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.private_files import make_private_dirs
from ts24_migrate.core.signing import SigningKey, canonical_json

from .event_data import prepare_event_data, reject_secret_text
from .events import FORMAT_VERSION, LedgerEvent, utc_timestamp
from .head import HeadStatement, HeadUnreadable, head_path, read_head, write_head

_READ_BLOCK = 64 * 1024


class Ledger:
    """Appends signed events to one ledger file; the file (and its folder) appear on first append."""

    def __init__(self, path: Path, signing_key: SigningKey):
        self.path = Path(path)
        self.signing_key = signing_key
        # flock already serializes threads (each append opens its own file description);
        # this lock only saves threads of one process from queueing in the kernel.
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r}, key_id={self.signing_key.key_id!r})"

    @property
    def head_path(self) -> Path:
        return head_path(self.path)

    def append(
        self, site_id: str, stage: str, event: str, data: Mapping[str, Any] | None, run_id: str | None = None
    ) -> LedgerEvent:
        """Append one event and return it, once it is durably on disk.

        Raises ValueError for secret-looking or non-JSON data, VerificationError
        if the ledger's last line is damaged (appending would hide the damage).
        """
        for name, value in (("site", site_id), ("stage", stage), ("event", event)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"audit event {name} must be a non-empty string")
            reject_secret_text(value, name)
        if run_id is not None:
            if not isinstance(run_id, str):
                raise ValueError("audit event run_id must be a string or None")
            reject_secret_text(run_id, "run_id")
        figures = prepare_event_data(data)

        make_private_dirs(self.path.parent)
        with self._thread_lock, _locked(self.path, fcntl.LOCK_EX, create=True) as fd:
            last = _last_event(fd, self.path, self.signing_key.public_key_b64)
            _check_head_agrees(self.path, last, self.signing_key.public_key_b64)
            new = self._signed_event(site_id, stage, event, figures, run_id, last)
            write_all(fd, new.line())
            os.fsync(fd)
            if last is None:  # the file is new: make its directory entry durable too
                fsync_dir(self.path.parent)
            write_head(self.path, HeadStatement.for_event(new, self.signing_key))
        return new

    def head(self) -> LedgerEvent | None:
        """The last event of the ledger, or None when it is empty or does not exist yet."""
        if not self.path.exists():
            return None
        with _locked(self.path, fcntl.LOCK_SH, create=False) as fd:
            return _last_event(fd, self.path, self.signing_key.public_key_b64)

    def head_hash(self) -> str | None:
        head = self.head()
        return head.hash if head else None

    def _signed_event(
        self, site_id: str, stage: str, event: str, data: dict[str, Any], run_id: str | None, last: LedgerEvent | None
    ) -> LedgerEvent:
        unsigned = LedgerEvent(
            v=FORMAT_VERSION,
            seq=(last.seq + 1) if last else 1,
            time=utc_timestamp(),
            site=site_id,
            stage=stage,
            event=event,
            run_id=run_id,
            data=data,
            prev_hash=last.hash if last else None,
            key_id=self.signing_key.key_id,
        )
        content = canonical_json(unsigned.content(), utf8=True)
        return LedgerEvent(
            **{
                **unsigned.to_dict(),
                "hash": hashlib.sha256(content).hexdigest(),
                "signature": base64.b64encode(self.signing_key.sign(content)).decode("ascii"),
            }
        )


def read_events(path: Path) -> Iterator[tuple[int, LedgerEvent | None, str | None]]:
    """Each line of a ledger as (line number, event, None), or (line number, None, what is wrong).

    Tolerant reading for display; it checks no hash or signature (verify_ledger does).
    """
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            event, problem = parse_line(raw)
            yield line_no, event, problem


def parse_line(raw: bytes) -> tuple[LedgerEvent | None, str | None]:
    """The event of one ledger line, or None and why it is not one (in words for a problem list)."""
    if not raw.endswith(b"\n"):
        incomplete = True
    else:
        incomplete = False
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    if not text.strip():
        return None, "empty line"
    try:
        values = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        if incomplete:
            return None, (
                f"incomplete last line ({len(raw)} bytes, no line end): the file was cut or a write was interrupted"
            )
        return None, f"not a JSON event ({str(exc).split(':')[0]})"
    problem = _shape_problem(values)
    if problem:
        return None, problem
    return LedgerEvent.from_dict(values), None


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "v": (int,),
    "seq": (int,),
    "time": (str,),
    "site": (str,),
    "stage": (str,),
    "event": (str,),
    "run_id": (str, type(None)),
    "data": (dict,),
    "prev_hash": (str, type(None)),
    "key_id": (str,),
    "hash": (str,),
    "signature": (str,),
}


def _shape_problem(values: Any) -> str | None:
    if not isinstance(values, dict):
        return "not a JSON object"
    missing = [name for name in _FIELD_TYPES if name not in values]
    if missing:
        return f"field(s) missing: {', '.join(missing)}"
    unknown = sorted(set(values) - set(_FIELD_TYPES))
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    for name, types in _FIELD_TYPES.items():
        value = values[name]
        if not isinstance(value, types) or isinstance(value, bool):
            return f"field {name} has the wrong type ({type(value).__name__})"
    if values["v"] != FORMAT_VERSION:
        return f"unknown ledger format version {values['v']}"
    if values["seq"] < 1:
        return f"seq {values['seq']} is not a positive number"
    return None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}: an edit hides a value")
        result[key] = value
    return result


class _locked:
    """Open `path` and hold an flock on it for the block; yields the file descriptor."""

    def __init__(self, path: Path, operation: int, *, create: bool):
        self.path, self.operation, self.create = path, operation, create

    def __enter__(self) -> int:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT if self.create else os.O_RDONLY
        self.fd = os.open(self.path, flags | os.O_CLOEXEC, 0o600)  # its owner only, like every work file
        try:
            fcntl.flock(self.fd, self.operation)
        except BaseException:
            os.close(self.fd)
            raise
        return self.fd

    def __exit__(self, *exc_info: object) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)


def _verify_command(path: Path, public_key_b64: str | None) -> str:
    """The command that checks this ledger, ready to run (the key the pipeline signs with is public)."""
    key = f" --public-key {public_key_b64}" if public_key_b64 else ""
    return f"`ts24-migrate audit verify {path}{key}`"


def _last_event(fd: int, path: Path, public_key_b64: str | None = None) -> LedgerEvent | None:
    """The ledger's last event, read backwards from the end; None for an empty file."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    if os.pread(fd, 1, size - 1) != b"\n":
        raise VerificationError(
            f"ledger {path} ends with an incomplete line (a write was cut short); nothing appended. "
            f"Check it with {_verify_command(path, public_key_b64)} before anyone repairs it"
        )
    # Read blocks backwards from the final newline until the newline that ends the line before.
    position, line = size - 1, b""
    while position > 0:
        start = max(0, position - _READ_BLOCK)
        line = os.pread(fd, position - start, start) + line
        position = start
        newline = line.rfind(b"\n")
        if newline >= 0:
            line = line[newline + 1 :]
            break
    event, problem = parse_line(line + b"\n")
    if event is None:
        raise VerificationError(
            f"ledger {path}: the last line is not a valid event ({problem}); "
            f"nothing appended. Check it with {_verify_command(path, public_key_b64)}"
        )
    if event.computed_hash() != event.hash:
        raise VerificationError(
            f"ledger {path}: the last event (seq {event.seq}) does not match its hash; "
            f"nothing appended. Check it with {_verify_command(path, public_key_b64)}"
        )
    return event


def _check_head_agrees(path: Path, last: LedgerEvent | None, public_key_b64: str | None = None) -> None:
    """Refuse to append when the signed head names an event the file no longer holds."""
    try:
        head = read_head(path)
    except HeadUnreadable as exc:
        raise VerificationError(
            f"{exc}; nothing appended. Check the ledger with {_verify_command(path, public_key_b64)}"
        ) from None
    if head is None:
        return
    last_seq = last.seq if last else 0
    if head.seq > last_seq:
        raise VerificationError(
            f"ledger {path}: its signed head names seq {head.seq} but the file ends at seq {last_seq} "
            f"(events were removed); nothing appended. Check it with {_verify_command(path, public_key_b64)}"
        )
