"""Offline verification of a ledger: the file, its head, and public keys; nothing else.

Every problem is one line that names the event (its seq and line number) and
what is wrong, e.g.::

    event seq 7 (line 7): its content does not match its hash: the event was edited after it was written
    events seq 12..14 are missing between event seq 11 (line 11) and event seq 15 (line 12): they were removed
    event seq 3 (line 4) is out of place: by its number it belongs between seq 2 (line 2) and seq 4 (line 3)

Example::

    result = verify_ledger(Path("work/ledger/hn-01.jsonl"), [load_public_key(Path("keys/signing.pub"))])
    if not result.ok:
        print("\\n".join(result.problems))
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ts24_migrate.core.errors import ConfigError
from ts24_migrate.core.signing import key_id_of, load_public_key, verify_signature

from .head import HeadUnreadable, head_path, read_head
from .ledger import parse_line


@dataclass
class LedgerVerification:
    """The verdict on one ledger: `ok` is True only when `problems` is empty."""

    path: Path
    ok: bool
    events: int  # well-formed events read from the file
    head_seq: int | None  # seq and hash of the file's last event
    head_hash: str | None
    key_ids: list[str] = field(default_factory=list)  # keys the events are signed with
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ledger": str(self.path),
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "key_ids": self.key_ids,
            "problems": self.problems,
        }

    def summary(self) -> str:
        if self.ok:
            return f"ledger {self.path} is intact: {self.events} events, head seq {self.head_seq} hash {self.head_hash}"
        return f"ledger {self.path} is NOT intact: {len(self.problems)} problem(s) in {self.events} events"


@dataclass(frozen=True)
class _Link:
    """What the chain checks need of one well-formed event."""

    line: int
    seq: int
    hash: str
    prev_hash: str | None
    key_id: str


def verify_ledger(
    path: Path, public_keys: Iterable[str | Path], *, expected_head: str | None = None
) -> LedgerVerification:
    """Check every event's form, hash, signature and place in the chain, and the signed head.

    `public_keys`: base64 Ed25519 keys or .pub files (several during a key change).
    `expected_head`: a head hash recorded elsewhere (e.g. in a certificate) that the
    ledger must still contain; it catches a cut that also restored an older head file.
    """
    path = Path(path)
    keys = {key_id_of(key): key for key in (load_public_key(k) for k in public_keys)}
    if not keys:
        raise ConfigError("no public key given to verify the ledger with")
    problems: list[str] = []
    links: list[_Link] = []
    key_ids: set[str] = set()

    if path.exists():
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                link = _check_line(line_no, raw, keys, problems)
                if link is not None:
                    links.append(link)
                    key_ids.add(link.key_id)
    elif head_path(path).exists():
        problems.append(f"the ledger file {path} is missing but its head file exists: the ledger was deleted")
    else:
        raise ConfigError("ledger file does not exist", path=str(path))

    by_seq: dict[int, list[_Link]] = {}
    for link in links:
        by_seq.setdefault(link.seq, []).append(link)
    problems += _duplicates(by_seq)
    problems += _gaps(by_seq)
    problems += _out_of_place(links, by_seq)
    problems += _broken_links(by_seq)
    problems += _head_problems(path, by_seq, keys, has_lines=bool(links) or bool(problems))
    if expected_head is not None and not any(link.hash == expected_head for link in links):
        problems.append(
            f"the expected head {expected_head[:16]}... is not in the ledger: "
            "events were removed or replaced since it was recorded"
        )

    last = links[-1] if links else None
    return LedgerVerification(
        path=path,
        ok=not problems,
        events=len(links),
        head_seq=last.seq if last else None,
        head_hash=last.hash if last else None,
        key_ids=sorted(key_ids),
        problems=problems,
    )


def _check_line(line_no: int, raw: bytes, keys: dict[str, str], problems: list[str]) -> _Link | None:
    event, problem = parse_line(raw)
    if event is None:
        problems.append(f"line {line_no}: {problem}")
        return None
    name = f"event seq {event.seq} (line {line_no})"
    complete = raw.endswith(b"\n")
    if not complete:
        problems.append(f"{name}: the last line has no line end: the file was cut after it")
    if event.computed_hash() != event.hash:
        problems.append(f"{name}: its content does not match its hash: the event was edited after it was written")
    else:
        if (raw if complete else raw + b"\n") != event.line():
            problems.append(f"{name}: the line is not in the form the ledger writes: it was re-written by hand")
        problems.extend(
            f"{name}: {p}" for p in _signature_problems(event.key_id, event.signature, event.content_bytes(), keys)
        )
        try:
            _ = event.at  # parses the time: a malformed one raises
        except ValueError:
            problems.append(f"{name}: its time {event.time!r} is not an ISO 8601 UTC time")
    return _Link(line_no, event.seq, event.hash, event.prev_hash, event.key_id)


def _signature_problems(key_id: str, signature: str, signed: bytes, keys: dict[str, str]) -> list[str]:
    public_key = keys.get(key_id)
    if public_key is None:
        return [f"signed by key id {key_id}, which is not among the trusted public keys ({', '.join(sorted(keys))})"]
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return ["its signature is not base64"]
    if base64.b64encode(raw_signature).decode("ascii") != signature:
        # Unused low bits of the last base64 character would decode to the same signature.
        return ["its signature is not written as the ledger writes it (edited)"]
    if not verify_signature(public_key, signed, raw_signature):
        return [f"its signature does not verify with key id {key_id}: forged, or re-hashed after an edit"]
    return []


def _duplicates(by_seq: dict[int, list[_Link]]) -> list[str]:
    problems = []
    for seq in sorted(by_seq):
        first, *others = by_seq[seq]
        for other in others:
            how = (
                "an identical copy was inserted"
                if other.hash == first.hash
                else "two different events carry this number: one was inserted"
            )
            problems.append(f"event seq {seq} (line {other.line}) repeats seq {seq} of line {first.line}: {how}")
    return problems


def _gaps(by_seq: dict[int, list[_Link]]) -> list[str]:
    """Numbers missing between the events present (a cut at the end is the head's to find)."""
    problems = []
    previous = 0
    for seq in sorted(by_seq):
        if seq > previous + 1:
            first, last = previous + 1, seq - 1
            which = f"event seq {first} is" if first == last else f"events seq {first}..{last} are"
            after = by_seq[seq][0]
            if previous:
                before = by_seq[previous][0]
                where = f"between event seq {previous} (line {before.line}) and event seq {seq} (line {after.line})"
            else:
                where = f"before event seq {seq} (line {after.line})"
            verb = "it was" if first == last else "they were"
            problems.append(f"{which} missing {where}: {verb} removed")
        previous = seq
    return problems


def _out_of_place(links: list[_Link], by_seq: dict[int, list[_Link]]) -> list[str]:
    """Events whose number does not fit their position, as few as explain the disorder.

    The events along a longest increasing run of numbers are in place; each other
    event is named with where its number says it belongs.
    """
    firsts = [link for link in links if by_seq[link.seq][0] is link]
    in_place = _longest_increasing(firsts)
    present = sorted(by_seq)
    problems = []
    for index, link in enumerate(firsts):
        if index in in_place:
            continue
        position = bisect.bisect_left(present, link.seq)
        before = by_seq[present[position - 1]][0] if position > 0 else None
        after = by_seq[present[position + 1]][0] if position + 1 < len(present) else None
        if before and after:
            belongs = f"between seq {before.seq} (line {before.line}) and seq {after.seq} (line {after.line})"
        elif before:
            belongs = f"after seq {before.seq} (line {before.line})"
        else:
            belongs = f"before seq {after.seq} (line {after.line})" if after else "elsewhere"
        problems.append(
            f"event seq {link.seq} (line {link.line}) is out of place: "
            f"by its number it belongs {belongs}: the events were reordered"
        )
    return problems


def _longest_increasing(links: list[_Link]) -> set[int]:
    """Indexes of one longest strictly increasing subsequence of seq numbers (patience sorting)."""
    tails: list[int] = []  # tails[k]: index of the smallest tail of an increasing run of length k+1
    tail_seqs: list[int] = []
    parent: list[int | None] = []
    for index, link in enumerate(links):
        k = bisect.bisect_left(tail_seqs, link.seq)
        parent.append(tails[k - 1] if k > 0 else None)
        if k == len(tails):
            tails.append(index)
            tail_seqs.append(link.seq)
        else:
            tails[k] = index
            tail_seqs[k] = link.seq
    chosen: set[int] = set()
    current = tails[-1] if tails else None
    while current is not None:
        chosen.add(current)
        current = parent[current]
    return chosen


def _broken_links(by_seq: dict[int, list[_Link]]) -> list[str]:
    problems = []
    for seq in sorted(by_seq):
        link = by_seq[seq][0]
        if seq == 1:
            if link.prev_hash is not None:
                problems.append(f"event seq 1 (line {link.line}) names a previous event, but the first event has none")
            continue
        previous = by_seq.get(seq - 1)
        if previous and link.prev_hash not in {p.hash for p in previous}:
            problems.append(
                f"event seq {seq} (line {link.line}) does not link to event seq {seq - 1} "
                f"(line {previous[0].line}): its prev_hash differs from that event's hash, "
                "so an event was replaced"
            )
    return problems


def _head_problems(path: Path, by_seq: dict[int, list[_Link]], keys: dict[str, str], *, has_lines: bool) -> list[str]:
    name = head_path(path).name
    try:
        head = read_head(path)
    except HeadUnreadable as exc:
        return [str(exc)]
    if head is None:
        if has_lines:
            return [f"head file {name} is missing: events cut from the end of the ledger cannot be ruled out"]
        return []
    signature_problem = head.signature_problem(keys)
    if signature_problem:
        return [f"head file {name}: {signature_problem}"]
    last_seq = max(by_seq) if by_seq else 0
    if head.seq > last_seq:
        which = f"event seq {head.seq} is" if head.seq == last_seq + 1 else f"events seq {last_seq + 1}..{head.seq} are"
        ends = f"seq {last_seq} (line {by_seq[last_seq][0].line})" if last_seq else "no event"
        return [
            f"{which} missing at the end: the signed head ({name}) names seq {head.seq}, but the ledger "
            f"ends at {ends}: the last event(s) were removed or the file was cut"
        ]
    present = by_seq.get(head.seq)
    if present and head.hash not in {link.hash for link in present}:
        return [
            f"event seq {head.seq} (line {present[0].line}) is not the event the signed head ({name}) "
            f"names (hash {head.hash[:16]}...): that event was replaced"
        ]
    return []
