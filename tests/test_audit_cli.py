"""`ts24-migrate audit verify|show`: exit codes, problem lists, --json, --site via the inventory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audit import Ledger
from ts24_migrate.cli.main import main
from ts24_migrate.core.signing import generate_signing_key, load_signing_key

INVENTORY = """\
version: 1
work_dir: work
signing_key: keys/signing.key
sites:
  - id: hn-01
    office: "01"
    legacy: env:TS24_HN01_LEGACY_URL
    cutover: 2025-07-01
"""


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    """An inventory with a signing key and a ledger of 5 events for site hn-01, where the lead puts them."""
    (tmp_path / "sites.yaml").write_text(INVENTORY)
    generate_signing_key(tmp_path / "keys" / "signing.key")
    ledger = Ledger(tmp_path / "work" / "ledger" / "hn-01.jsonl", load_signing_key(tmp_path / "keys" / "signing.key"))
    for i in range(5):
        ledger.append("hn-01", "load", "chunk_loaded", {"table": "HO_SO", "rows": 100 + i}, run_id=f"run-{i}")
    return {
        "inventory": tmp_path / "sites.yaml",
        "ledger": ledger.path,
        "public_key": tmp_path / "keys" / "signing.pub",
        "private_key": tmp_path / "keys" / "signing.key",
    }


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def remove_line(path: Path, index: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[index]
    path.write_bytes(b"".join(lines))


def test_verify_intact_ledger_exits_0(site: dict, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "audit", "verify", site["ledger"], "--public-key", site["public_key"])
    assert (code, err) == (0, "")
    assert out.startswith(f"ledger {site['ledger']} is intact: 5 events, head seq 5 hash ")


def test_verify_accepts_the_key_as_base64_text(site: dict, capsys: pytest.CaptureFixture) -> None:
    key_text = site["public_key"].read_text().strip()
    assert run(capsys, "audit", "verify", site["ledger"], "--public-key", key_text)[0] == 0


def test_verify_tampered_ledger_exits_1_listing_each_problem(site: dict, capsys: pytest.CaptureFixture) -> None:
    remove_line(site["ledger"], 2)
    remove_line(site["ledger"], 3)  # the last one, now at index 3
    code, out, err = run(capsys, "audit", "verify", site["ledger"], "--public-key", site["public_key"])

    assert code == 1
    assert out.splitlines() == [
        f"ledger {site['ledger']} is NOT intact: 2 problem(s) in 3 events",
        "  event seq 3 is missing between event seq 2 (line 2) and event seq 4 (line 3): it was removed",
        "  event seq 5 is missing at the end: the signed head (hn-01.jsonl.head) names seq 5, but the ledger "
        "ends at seq 4 (line 3): the last event(s) were removed or the file was cut",
    ]
    assert err == f"error: ledger {site['ledger']}: 2 problem(s); it is not intact\n"


def test_verify_json(site: dict, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "audit", "verify", site["ledger"], "--public-key", site["public_key"], "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["events"] == 5 and report["problems"] == []

    site["ledger"].write_bytes(site["ledger"].read_bytes().replace(b'"rows":102', b'"rows":2'))
    code, out, _ = run(capsys, "--json", "audit", "verify", site["ledger"], "--public-key", site["public_key"])
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["problems"] == [
        "event seq 3 (line 3): its content does not match its hash: the event was edited after it was written"
    ]


def test_verify_with_a_wrong_key_exits_1(site: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    other = generate_signing_key(tmp_path / "other" / "signing.key")
    code, out, _ = run(capsys, "audit", "verify", site["ledger"], "--public-key", other)
    assert code == 1
    assert "event seq 1 (line 1): signed by key id" in out and "not among the trusted public keys" in out


def test_verify_site_from_the_inventory(site: dict, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "-i", site["inventory"], "audit", "verify", "--site", "hn-01")
    assert (code, err) == (0, "") and "is intact: 5 events" in out

    remove_line(site["ledger"], 0)
    code, out, _ = run(capsys, "-i", site["inventory"], "audit", "verify", "--site", "hn-01", "--json")
    assert code == 1
    assert json.loads(out)["problems"] == ["event seq 1 is missing before event seq 2 (line 1): it was removed"]


def test_verify_usage_errors_exit_2_with_one_line(site: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = [
        (["-i", site["inventory"], "audit", "verify", "--site", "hn-99"], "no site 'hn-99' in the inventory"),
        (["audit", "verify", tmp_path / "nope.jsonl", "--public-key", site["public_key"]], "does not exist"),
        (["audit", "verify", site["ledger"]], "give --public-key"),
        (["audit", "verify", "--public-key", site["public_key"]], "give a LEDGER_FILE, or --site"),
        (
            ["audit", "verify", site["ledger"], "--public-key", tmp_path / "missing.pub"],
            "public key file .*missing.pub does not exist",
        ),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert re.search(message, err), err


def test_verify_never_shows_a_private_key_given_by_mistake(site: dict, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "audit", "verify", site["ledger"], "--public-key", site["private_key"])
    assert code == 2 and "this is a private key" in err
    pem_body = site["private_key"].read_text().splitlines()[1]
    assert pem_body not in out + err


def test_show_lists_events_and_damaged_lines(site: dict, capsys: pytest.CaptureFixture) -> None:
    with open(site["ledger"], "ab") as handle:
        handle.write(b'{"cut')
    code, out, _ = run(capsys, "audit", "show", site["ledger"], "--tail", "3")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4
    assert lines[0].split() == ["SEQ", "TIME", "(UTC)", "SITE", "STAGE", "EVENT", "RUN", "DATA"]
    assert lines[1].split()[0] == "4" and '{"rows":103,"table":"HO_SO"}' in lines[1]
    assert lines[3].strip().startswith("? line 6: incomplete last line")


def test_show_json_filters_by_site_and_finds_the_ledger_from_the_inventory(
    site: dict, capsys: pytest.CaptureFixture
) -> None:
    code, out, _ = run(capsys, "-i", site["inventory"], "audit", "show", "--site", "hn-01", "--json", "--tail", "2")
    shown = json.loads(out)
    assert code == 0 and shown["ledger"] == str(site["ledger"])
    assert [e["seq"] for e in shown["events"]] == [4, 5]
    assert shown["events"][0]["data"] == {"rows": 103, "table": "HO_SO"} and shown["events"][0]["line"] == 4

    code, out, _ = run(capsys, "audit", "show", site["ledger"], "--site", "hn-02", "--json")
    assert code == 0 and json.loads(out)["events"] == []


def test_help_texts_have_examples(capsys: pytest.CaptureFixture) -> None:
    for command in (["audit", "verify"], ["audit", "show"]):
        code, out, _ = run(capsys, *command, "--help")
        assert code == 0 and "Example:" in out


def test_verify_in_a_real_process_reports_on_stdout_and_exit_code(site: dict) -> None:
    command = Path(sys.executable).with_name("ts24-migrate")
    args = [str(command), "audit", "verify", str(site["ledger"]), "--public-key", str(site["public_key"])]
    assert subprocess.run(args, capture_output=True, timeout=120).returncode == 0
    remove_line(site["ledger"], 1)
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "event seq 2 is missing between event seq 1 (line 1) and event seq 3 (line 2)" in done.stdout
    assert "Traceback" not in done.stderr
