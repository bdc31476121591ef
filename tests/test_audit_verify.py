"""verify_ledger finds every kind of tampering offline and names the event that is wrong."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import Ledger, head_path, verify_ledger
from audit.events import line_bytes
from ts24_migrate.core.errors import ConfigError
from ts24_migrate.core.signing import SigningKey, canonical_json

EVENTS = 8
KEY = SigningKey.generate()  # one key for the module: tests only read what it signed
OTHER_KEY = SigningKey.generate()


def make_ledger(folder: Path, events: int = EVENTS, key: SigningKey = KEY, site: str = "hn-01") -> Path:
    ledger = Ledger(folder / f"{site}.jsonl", key)
    stages = ["assess", "extract", "backup", "verify-backup", "load", "validate", "reconcile", "purge"]
    for i in range(events):
        ledger.append(
            site,
            stages[i % len(stages)],
            f"{stages[i % len(stages)]}_done",
            {"rows": 1000 + i, "office": "BHXH Hà Nội"},
            run_id=f"run-{i}",
        )
    return ledger.path


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return make_ledger(tmp_path)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def problems(path: Path, keys: list[str] | None = None, **kwargs) -> list[str]:
    result = verify_ledger(path, keys or [KEY.public_key_b64], **kwargs)
    assert result.ok == (not result.problems)
    return result.problems


def forged_line(values: dict, key: SigningKey | None) -> bytes:
    """A line as an attacker would make it: re-hashed, and signed with `key` (not ours)."""
    content = {k: v for k, v in values.items() if k not in ("hash", "signature")}
    if key is not None:
        content["key_id"] = key.key_id
    signed = canonical_json(content, utf8=True)
    values = {
        **content,
        "hash": hashlib.sha256(signed).hexdigest(),
        "signature": base64.b64encode((key or OTHER_KEY).sign(signed)).decode(),
    }
    return line_bytes(values)


def test_an_intact_ledger_verifies(path: Path) -> None:
    result = verify_ledger(path, [KEY.public_key_b64])
    assert result.ok and result.problems == []
    assert result.events == EVENTS and result.head_seq == EVENTS
    assert result.head_hash == Ledger(path, KEY).head_hash()
    assert result.key_ids == [KEY.key_id]
    assert "intact: 8 events" in result.summary()


EDITS = [  # (field, its edited value, what verify says)
    ("seq", 40, "event seq 40 (line 4): its content does not match its hash"),
    ("time", "2024-01-01T00:00:00.000000Z", "event seq 4 (line 4): its content does not match its hash"),
    ("site", "hn-02", "event seq 4 (line 4): its content does not match its hash"),
    ("stage", "load", "event seq 4 (line 4): its content does not match its hash"),
    ("event", "nothing_happened", "event seq 4 (line 4): its content does not match its hash"),
    ("run_id", None, "event seq 4 (line 4): its content does not match its hash"),
    ("data", {"rows": 1, "office": "BHXH Hà Nội"}, "event seq 4 (line 4): its content does not match its hash"),
    ("prev_hash", "0" * 64, "event seq 4 (line 4): its content does not match its hash"),
    ("key_id", OTHER_KEY.key_id, "event seq 4 (line 4): its content does not match its hash"),
    ("hash", "f" * 64, "event seq 4 (line 4): its content does not match its hash"),
    ("signature", base64.b64encode(bytes(64)).decode(), "event seq 4 (line 4): its signature does not verify"),
    ("v", 2, "line 4: unknown ledger format version 2"),
]


@pytest.mark.parametrize("field, new_value, expected", EDITS, ids=[field for field, _, _ in EDITS])
def test_an_edited_field_is_found_and_the_event_named(path: Path, field: str, new_value: object, expected: str) -> None:
    lines = lines_of(path)
    values = json.loads(lines[3])
    assert values[field] != new_value
    values[field] = new_value
    lines[3] = line_bytes(values)
    write_lines(path, lines)

    found = problems(path)
    assert any(p.startswith(expected) for p in found), found


def test_an_edit_that_also_recomputes_the_hash_fails_the_signature_and_the_next_link(path: Path) -> None:
    lines = lines_of(path)
    values = json.loads(lines[3])
    values["data"]["rows"] = 0
    values["hash"] = hashlib.sha256(
        canonical_json({k: v for k, v in values.items() if k not in ("hash", "signature")}, utf8=True)
    ).hexdigest()
    lines[3] = line_bytes(values)
    write_lines(path, lines)

    assert problems(path) == [
        f"event seq 4 (line 4): its signature does not verify with key id {KEY.key_id}: "
        "forged, or re-hashed after an edit",
        "event seq 5 (line 5) does not link to event seq 4 (line 4): its prev_hash differs from that "
        "event's hash, so an event was replaced",
    ]


def test_an_edit_re_signed_with_another_key_is_an_unknown_key(path: Path) -> None:
    lines = lines_of(path)
    values = json.loads(lines[3])
    values["data"]["rows"] = 0
    lines[3] = forged_line(values, OTHER_KEY)
    write_lines(path, lines)

    found = problems(path)
    assert found[0] == (
        f"event seq 4 (line 4): signed by key id {OTHER_KEY.key_id}, which is not among "
        f"the trusted public keys ({KEY.key_id})"
    )
    assert found[1].startswith("event seq 5 (line 5) does not link to event seq 4 (line 4)")


def test_a_reformatted_line_is_found_even_when_its_values_are_unchanged(path: Path) -> None:
    lines = lines_of(path)
    lines[2] = json.dumps(json.loads(lines[2]), ensure_ascii=True).encode() + b"\n"  # spaces, \u escapes
    write_lines(path, lines)
    assert problems(path) == [
        "event seq 3 (line 3): the line is not in the form the ledger writes: it was re-written by hand"
    ]


def test_a_duplicated_key_that_hides_a_value_is_found(path: Path) -> None:
    lines = lines_of(path)
    lines[2] = lines[2].replace(b'"data":{', b'"data":{"rows":0},"data":{', 1)
    write_lines(path, lines)
    found = problems(path)
    assert found[0] == "line 3: not a JSON event (duplicate key 'data')"


def test_removed_event_in_the_middle(path: Path) -> None:
    lines = lines_of(path)
    del lines[3]
    write_lines(path, lines)
    assert problems(path) == [
        "event seq 4 is missing between event seq 3 (line 3) and event seq 5 (line 4): it was removed"
    ]


def test_removed_events_in_the_middle(path: Path) -> None:
    lines = lines_of(path)
    del lines[2:5]
    write_lines(path, lines)
    assert problems(path) == [
        "events seq 3..5 are missing between event seq 2 (line 2) and event seq 6 (line 3): they were removed"
    ]


def test_removed_first_event(path: Path) -> None:
    write_lines(path, lines_of(path)[1:])
    assert problems(path) == ["event seq 1 is missing before event seq 2 (line 1): it was removed"]


def test_removed_last_event(path: Path) -> None:
    write_lines(path, lines_of(path)[:-1])
    assert problems(path) == [
        "event seq 8 is missing at the end: the signed head (hn-01.jsonl.head) names seq 8, but the ledger "
        "ends at seq 7 (line 7): the last event(s) were removed or the file was cut"
    ]


def test_removed_last_events_and_every_event(path: Path) -> None:
    write_lines(path, lines_of(path)[:-3])
    assert problems(path)[0].startswith("events seq 6..8 are missing at the end")
    write_lines(path, [])
    assert problems(path) == [
        "events seq 1..8 are missing at the end: the signed head (hn-01.jsonl.head) names seq 8, but the "
        "ledger ends at no event: the last event(s) were removed or the file was cut"
    ]


def test_inserted_copy_of_an_event(path: Path) -> None:
    lines = lines_of(path)
    lines.insert(5, lines[2])
    write_lines(path, lines)
    assert problems(path) == ["event seq 3 (line 6) repeats seq 3 of line 3: an identical copy was inserted"]


def test_inserted_forged_event(path: Path) -> None:
    lines = lines_of(path)
    values = json.loads(lines[4])  # pretend to be seq 5, linked to seq 4
    values["event"] = "dossier_deleted"
    lines.insert(4, forged_line(values, OTHER_KEY))
    write_lines(path, lines)

    found = problems(path)
    assert found == [
        f"event seq 5 (line 5): signed by key id {OTHER_KEY.key_id}, which is not among the trusted "
        f"public keys ({KEY.key_id})",
        "event seq 5 (line 6) repeats seq 5 of line 5: two different events carry this number: one was inserted",
    ]


def test_inserted_event_from_another_site_ledger_signed_by_our_key(tmp_path: Path, path: Path) -> None:
    other = make_ledger(tmp_path / "other", site="hn-02")
    lines = lines_of(path)
    lines[4] = lines_of(other)[4]  # a genuine, validly signed seq 5, from another chain
    write_lines(path, lines)
    assert problems(path) == [
        "event seq 5 (line 5) does not link to event seq 4 (line 4): its prev_hash differs from that event's "
        "hash, so an event was replaced",
        "event seq 6 (line 6) does not link to event seq 5 (line 5): its prev_hash differs from that event's "
        "hash, so an event was replaced",
    ]


def test_appended_forged_event_at_the_end(path: Path) -> None:
    lines = lines_of(path)
    values = json.loads(lines[-1])
    values.update(seq=EVENTS + 1, prev_hash=values["hash"], event="purge_approved")
    lines.append(forged_line(values, OTHER_KEY))
    write_lines(path, lines)
    assert problems(path) == [
        f"event seq 9 (line 9): signed by key id {OTHER_KEY.key_id}, which is not "
        f"among the trusted public keys ({KEY.key_id})"
    ]


def test_swapped_events(path: Path) -> None:
    lines = lines_of(path)
    lines[2], lines[3] = lines[3], lines[2]
    write_lines(path, lines)
    found = problems(path)
    assert len(found) == 1
    assert found[0] in (
        "event seq 3 (line 4) is out of place: by its number it belongs between seq 2 (line 2) and seq 4 "
        "(line 3): the events were reordered",
        "event seq 4 (line 3) is out of place: by its number it belongs between seq 3 (line 4) and seq 5 "
        "(line 5): the events were reordered",
    )


def test_last_event_moved_to_the_front(path: Path) -> None:
    lines = lines_of(path)
    write_lines(path, [lines[-1]] + lines[:-1])
    assert problems(path) == [
        "event seq 8 (line 1) is out of place: by its number it belongs after seq 7 (line 8): the events were reordered"
    ]


def test_truncated_in_the_middle_of_the_last_line(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])
    found = problems(path)
    assert found[0].startswith("line 8: incomplete last line (")
    assert found[0].endswith("no line end): the file was cut or a write was interrupted")
    assert found[1].startswith("event seq 8 is missing at the end")


def test_truncated_just_before_the_last_line_end(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])
    assert problems(path) == ["event seq 8 (line 8): the last line has no line end: the file was cut after it"]


def test_damaged_lines_are_named(path: Path) -> None:
    lines = lines_of(path)
    lines.insert(4, b"\n")
    lines[1] = b"\xff\xfe garbage\n"
    write_lines(path, lines)
    found = problems(path)
    assert found[:2] == ["line 2: not UTF-8 text", "line 5: empty line"]
    assert "event seq 2 is missing between event seq 1 (line 1) and event seq 3 (line 3): it was removed" in found


def test_wrong_public_key_names_every_event(path: Path) -> None:
    found = problems(path, [OTHER_KEY.public_key_b64])
    unknown = f"signed by key id {KEY.key_id}, which is not among the trusted public keys ({OTHER_KEY.key_id})"
    assert found[:EVENTS] == [f"event seq {n} (line {n}): {unknown}" for n in range(1, EVENTS + 1)]
    assert found[EVENTS:] == [f"head file hn-01.jsonl.head: {unknown}"]


def test_a_key_change_verifies_with_both_public_keys(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, events=3)
    new_key = SigningKey.generate()
    Ledger(path, new_key).append("hn-01", "reconcile", "reconciled", {"in_flight": 12})

    assert problems(path, [KEY.public_key_b64, new_key.public_key_b64]) == []
    found = problems(path, [KEY.public_key_b64])
    assert found[0].startswith(f"event seq 4 (line 4): signed by key id {new_key.key_id}")


def test_head_file_missing_or_forged(path: Path) -> None:
    head = head_path(path)
    original = head.read_text()
    values = json.loads(original)
    values["seq"] = 7
    head.write_text(json.dumps(values))
    assert problems(path) == [
        f"head file hn-01.jsonl.head: its signature does not verify with key id {KEY.key_id} (forged or edited)"
    ]
    head.write_text("{broken")
    assert problems(path) == [f"head file {head} is not a head statement (damaged or edited)"]
    head.unlink()
    assert problems(path) == [
        "head file hn-01.jsonl.head is missing: events cut from the end of the ledger cannot be ruled out"
    ]


def test_a_restored_old_head_hides_a_cut_unless_the_head_is_anchored(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, events=EVENTS - 1)
    old_head = head_path(path).read_bytes()
    Ledger(path, KEY).append("hn-01", "purge", "purged", {"tables": 14})
    anchored = verify_ledger(path, [KEY.public_key_b64]).head_hash  # e.g. printed in the certificate

    write_lines(path, lines_of(path)[:-1])
    head_path(path).write_bytes(old_head)

    assert problems(path) == []  # the file alone cannot tell: this is what the anchor is for
    assert problems(path, expected_head=anchored) == [
        f"the expected head {anchored[:16]}... is not in the ledger: events were removed or replaced since "
        "it was recorded"
    ]


def test_deleted_ledger_with_head_left_behind(path: Path) -> None:
    path.unlink()
    assert problems(path)[0] == (f"the ledger file {path} is missing but its head file exists: the ledger was deleted")


def test_usage_errors(tmp_path: Path, path: Path) -> None:
    with pytest.raises(ConfigError, match="ledger file does not exist"):
        verify_ledger(tmp_path / "nope.jsonl", [KEY.public_key_b64])
    with pytest.raises(ConfigError, match="no public key given"):
        verify_ledger(path, [])
    with pytest.raises(ConfigError, match="private key"):
        verify_ledger(path, ["-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----"])


# -- any single change to the file is found --------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ledger(tmp_path_factory.mktemp("pristine"), events=6)


def _mutations():
    line = st.integers(min_value=0, max_value=5)
    return st.one_of(
        st.tuples(st.just("delete"), line, st.just(0), st.just(0)),
        st.tuples(st.just("swap"), line, line, st.just(0)).filter(lambda m: m[1] != m[2]),
        st.tuples(st.just("copy"), line, st.integers(0, 6), st.just(0)),
        st.tuples(st.just("byte"), line, st.integers(0, 10_000), st.integers(32, 126)),
    )


@settings(max_examples=60, deadline=None)
@given(mutation=_mutations())
def test_any_single_change_to_the_file_is_found(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, mutation: tuple[str, int, int, int]
) -> None:
    kind, i, j, value = mutation
    lines = lines_of(pristine)
    if kind == "delete":
        del lines[i]
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "copy":
        lines.insert(j, lines[i])
    else:
        position = j % len(lines[i])
        if lines[i][position] == value:
            value = value + 1 if value < 126 else 32
        lines[i] = lines[i][:position] + bytes([value]) + lines[i][position + 1 :]
    folder = tmp_path_factory.mktemp("mutated")
    target = folder / pristine.name
    write_lines(target, lines)
    shutil.copy(head_path(pristine), head_path(target))

    found = problems(target)
    assert found, f"{mutation} was not detected"
    assert all(p.startswith(("event seq", "events seq", "line ", "the ", "head file")) for p in found), found


def test_first_event_moved_to_the_end(path: Path) -> None:
    lines = lines_of(path)
    write_lines(path, lines[1:] + [lines[0]])
    assert problems(path) == [
        "event seq 1 (line 8) is out of place: by its number it belongs before seq 2 "
        "(line 1): the events were reordered"
    ]
