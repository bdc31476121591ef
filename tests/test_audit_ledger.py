"""Appending to the audit ledger: chain, format, durability guards, secrets, concurrent writers."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import Ledger, read_events, read_head, verify_ledger
from audit.event_data import looks_like_secret_key, reject_secret_text
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import SigningKey, canonical_json, generate_signing_key, verify_signature

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def ledger(tmp_path: Path, key: SigningKey) -> Ledger:
    return Ledger(tmp_path / "work" / "ledger" / "hn-01.jsonl", key)


def test_first_append_creates_the_file_and_its_folders(ledger: Ledger, key: SigningKey) -> None:
    assert not ledger.path.parent.exists()
    assert ledger.head() is None and ledger.head_hash() is None

    event = ledger.append("hn-01", "extract", "extracted", {"tables": 14, "rows": 120345}, run_id="run-1")

    assert ledger.path.exists()
    assert (event.seq, event.prev_hash, event.site, event.stage, event.event, event.run_id) == (
        1,
        None,
        "hn-01",
        "extract",
        "extracted",
        "run-1",
    )
    assert event.data == {"rows": 120345, "tables": 14}
    assert event.key_id == key.key_id
    assert ledger.head() == event and ledger.head_hash() == event.hash
    assert event.at.tzinfo is not None
    assert abs(event.at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_events_chain_and_are_hashed_and_signed_as_documented(ledger: Ledger, key: SigningKey) -> None:
    events = [ledger.append("hn-01", "load", "chunk_loaded", {"chunk": i}) for i in range(3)]

    assert [e.seq for e in events] == [1, 2, 3]
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    for line, event in zip(ledger.path.read_bytes().splitlines(keepends=True), events):
        record = json.loads(line)
        assert list(record) == [
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
        ]
        content = {k: v for k, v in record.items() if k not in ("hash", "signature")}
        # Recomputed the way an auditor would, from the documented format only.
        signed = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert hashlib.sha256(signed).hexdigest() == record["hash"] == event.hash
        assert verify_signature(key.public_key_b64, signed, base64.b64decode(record["signature"]))
        assert line == event.line()
    head = read_head(ledger.path)
    assert (head.seq, head.hash) == (3, events[2].hash)


def test_event_line_keeps_vietnamese_text_and_sorts_data_keys(ledger: Ledger) -> None:
    ledger.append("hn-01", "assess", "assessed", {"z": 1, "office": "BHXH Hà Nội", "a": {"y": 2, "b": 3}})
    line = ledger.path.read_text(encoding="utf-8")
    assert '"data":{"a":{"b":3,"y":2},"office":"BHXH Hà Nội","z":1}' in line


class Outcome(enum.Enum):
    PASSED = "passed"


def test_figures_of_common_types_become_plain_json(ledger: Ledger) -> None:
    event = ledger.append(
        "hn-01",
        "validate",
        "validated",
        {
            "cutover": dt.date(2025, 7, 1),
            "at": dt.datetime(2025, 7, 1, 8, 30),
            "ratio": decimal.Decimal("0.25"),
            "rows": decimal.Decimal("12"),
            "folder": Path("/srv/ts24/hn-01/files"),
            "outcome": Outcome.PASSED,
            "numpy_rows": np.int64(7),
            "tables": ("HO_SO", "HO_SO_TEP"),
            "nothing": None,
        },
    )
    assert event.data == {
        "at": "2025-07-01T08:30:00",
        "cutover": "2025-07-01",
        "folder": "/srv/ts24/hn-01/files",
        "nothing": None,
        "numpy_rows": 7,
        "outcome": "passed",
        "ratio": 0.25,
        "rows": 12,
        "tables": ["HO_SO", "HO_SO_TEP"],
    }
    assert verify_ledger(ledger.path, [ledger.signing_key.public_key_b64]).ok


@pytest.mark.parametrize(
    "data",
    [
        {"password": "hunter2"},
        {"DB_PASSWORD": "hunter2"},
        {"privateKey": "x"},
        {"signing": {"private_key": "x"}},
        {"api-key": "x"},
        {"client_secret": "x"},
        {"legacy": {"pwd": "x"}},
        {"token": "x"},
        {"legacy_url": "mssql+pyodbc://sa:hunter2@ts24-hn01/TS24?driver=ODBC+Driver+18"},
        {"odbc": "DRIVER={MariaDB};SERVER=ts24;UID=sa;PWD=hunter2;"},
        {"urls": ["sqlite:///x", "postgresql://migrator:hunter2@db/target"]},
        {"custodian": "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"},
        {"key": "-----BEGIN PRIVATE KEY-----\nhunter2\n-----END PRIVATE KEY-----"},
        {"legacy": Secret("hunter2")},
        {"postgresql://migrator:hunter2@db/target": 1},
    ],
)
def test_secret_looking_data_is_refused_and_nothing_is_written(ledger: Ledger, data: dict) -> None:
    ledger.append("hn-01", "assess", "assessed", {"tables": 3})
    before = ledger.path.read_bytes()
    with pytest.raises(ValueError, match="secret|password|private key material") as refused:
        ledger.append("hn-01", "extract", "extracted", data)
    assert "hunter2" not in str(refused.value)
    assert ledger.path.read_bytes() == before


def test_secrets_are_refused_in_the_other_fields_too(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="password"):
        ledger.append("hn-01", "extract", "failed on postgresql://u:hunter2@db/x", {})
    with pytest.raises(ValueError, match="password"):
        ledger.append("hn-01", "extract", "extracted", {}, run_id="pwd=hunter2")
    assert not ledger.path.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"legacy": "mssql+pyodbc://sa:***@ts24-hn01/TS24"},  # already redacted
        {"legacy": "sqlite:////srv/ts24/hn-01.sqlite"},
        {"report": "http://reports:8080/hn-01/index.html"},
        {"note": "portal:8080/path@anchor"},
        {
            "passed": 12,
            "key_range": [1, 500],
            "recipient": "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
        },
        {"legacy": "env:TS24_HN01_LEGACY_URL"},
    ],
)
def test_ordinary_figures_are_not_mistaken_for_secrets(ledger: Ledger, data: dict) -> None:
    assert ledger.append("hn-01", "extract", "extracted", data).data == data


@pytest.mark.parametrize(
    "data, message",
    [
        ({"ratio": float("nan")}, "NaN"),
        ({"ratio": float("inf")}, "NaN and infinity"),
        ({"blob": b"\x00\x01"}, "bytes are not figures"),
        ({"what": object()}, "type object is not JSON"),
        (["not", "a", "mapping"], "must be a mapping"),
    ],
)
def test_data_that_is_not_json_figures_is_refused(ledger: Ledger, data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ledger.append("hn-01", "extract", "extracted", data)  # type: ignore[arg-type]


def test_blank_site_stage_or_event_is_refused(ledger: Ledger) -> None:
    for args in (("", "extract", "x"), ("hn-01", " ", "x"), ("hn-01", "extract", None)):
        with pytest.raises(ValueError, match="must be a non-empty string"):
            ledger.append(*args, {})  # type: ignore[misc]


def test_append_refuses_a_ledger_with_a_cut_last_line(ledger: Ledger) -> None:
    for i in range(3):
        ledger.append("hn-01", "load", "chunk_loaded", {"chunk": i})
    ledger.path.write_bytes(ledger.path.read_bytes()[:-20])
    damaged = ledger.path.read_bytes()
    with pytest.raises(VerificationError, match="ends with an incomplete line.*nothing appended"):
        ledger.append("hn-01", "load", "chunk_loaded", {"chunk": 3})
    assert ledger.path.read_bytes() == damaged


def test_append_refuses_to_chain_onto_an_edited_last_event(ledger: Ledger) -> None:
    for _i in range(2):
        ledger.append("hn-01", "load", "chunk_loaded", {"rows": 100})
    ledger.path.write_bytes(ledger.path.read_bytes().replace(b'"rows":100}', b'"rows":999}'))
    with pytest.raises(VerificationError, match=r"last event \(seq 2\) does not match its hash"):
        ledger.append("hn-01", "load", "chunk_loaded", {"rows": 1})


def test_append_refuses_when_events_were_cut_from_the_end(ledger: Ledger) -> None:
    for i in range(3):
        ledger.append("hn-01", "load", "chunk_loaded", {"chunk": i})
    lines = ledger.path.read_bytes().splitlines(keepends=True)
    ledger.path.write_bytes(b"".join(lines[:2]))
    with pytest.raises(VerificationError, match="signed head names seq 3 but the file ends at seq 2"):
        ledger.append("hn-01", "load", "chunk_loaded", {"chunk": 3})


def test_long_events_are_read_back_across_read_blocks(ledger: Ledger) -> None:
    big = {"tables": {f"TABLE_{i:05d}": i for i in range(12000)}}  # a line of ~200 KB
    first = ledger.append("hn-01", "assess", "assessed", big)
    second = ledger.append("hn-01", "assess", "assessed", big)
    assert second.prev_hash == first.hash and ledger.head() == second


def test_concurrent_threads_lose_no_event(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "ledger.jsonl"
    shared = Ledger(path, key)
    start = threading.Barrier(8)

    def writer(worker: int) -> None:
        own = shared if worker % 2 else Ledger(path, key)  # one shared object and separate ones
        start.wait()
        for i in range(25):
            own.append("hn-01", "load", "chunk_loaded", {"worker": worker, "i": i})

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    result = verify_ledger(path, [key.public_key_b64])
    assert result.ok, result.problems
    assert result.events == 200
    seen = Counter((e.data["worker"], e.data["i"]) for _, e, _ in read_events(path))
    assert seen == Counter({(w, i): 1 for w in range(8) for i in range(25)})


WRITER = """
import sys, time
from pathlib import Path
from audit import Ledger
from ts24_migrate.core.signing import load_signing_key
ledger = Ledger(Path(sys.argv[1]), load_signing_key(Path(sys.argv[2])))
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.002)
for i in range(int(sys.argv[4])):
    ledger.append("hn-01", "load", "chunk_loaded", {"worker": int(sys.argv[5]), "i": i})
"""


@pytest.mark.slow
def test_concurrent_processes_produce_one_valid_chain_with_no_lost_event(tmp_path: Path) -> None:
    public_key = generate_signing_key(tmp_path / "signing.key")
    path = tmp_path / "ledger" / "hn-01.jsonl"
    go = tmp_path / "go"
    workers, per_worker = 4, 40
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(tmp_path / "signing.key"), str(go), str(per_worker), str(w)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for w in range(workers)
    ]
    time.sleep(0.5)  # let every writer import and wait, so that they really race
    go.touch()
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()

    result = verify_ledger(path, [public_key])
    assert result.ok, result.problems
    assert result.events == workers * per_worker
    events = [e for _, e, _ in read_events(path)]
    assert [e.seq for e in events] == list(range(1, workers * per_worker + 1))
    assert Counter((e.data["worker"], e.data["i"]) for e in events) == Counter(
        {(w, i): 1 for w in range(workers) for i in range(per_worker)}
    )
    interleaved = sum(1 for a, b in zip(events, events[1:]) if a.data["worker"] != b.data["worker"])
    assert interleaved > workers  # the writers did overlap, so the lock was exercised


# -- any figures round-trip, and the ledger stays valid ------------------------------


def _not_secret_text(text: str) -> bool:
    try:
        reject_secret_text(text, "x")
    except ValueError:
        return False
    return True


keys_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8).filter(
    lambda k: not looks_like_secret_key(k) and _not_secret_text(k)
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20).filter(_not_secret_text)
)
figures = st.dictionaries(
    keys_text,
    st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys_text, inner, max_size=3), max_leaves=8
    ),
    max_size=5,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(figures, min_size=1, max_size=3))
def test_any_figures_round_trip_and_verify(batch: list[dict]) -> None:
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "l.jsonl", key)
        written = [ledger.append("hn-01", "load", "chunk_loaded", data) for data in batch]
        read = [e for _, e, _ in read_events(ledger.path)]
        assert read == written
        assert [e.data for e in read] == [json.loads(canonical_json(d, utf8=True)) for d in batch]
        result = verify_ledger(ledger.path, [key.public_key_b64])
        assert result.ok, result.problems
