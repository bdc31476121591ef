"""A plan, an approval or a certificate edited by one byte: refused (exit code 4), or `certificate verify`
fails (exit code 1). Nothing is destroyed on a tampered plan or approval."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_purge_support import SITE, copy_site, run_cli, template

from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ExitCode

pytestmark = pytest.mark.slow


def _edited(data: bytes, position: int) -> bytes:
    """`data` with the byte at `position` replaced by another of the same class (digit, letter, other)."""
    byte = data[position : position + 1]
    if byte.isdigit():
        other = b"1" if byte != b"1" else b"2"
    elif byte.isalpha():
        other = b"a" if byte.lower() != b"a" else b"b"
    else:
        other = b" " if byte != b" " else b"x"
    return data[:position] + other + data[position + 1 :]


def _positions(data: bytes, count: int) -> list[int]:
    """Spread over the file, plus the middle of the last signature and of a fingerprint."""
    step = max(1, len(data) // count)
    chosen = list(range(7, len(data) - 1, step))[:count]
    chosen.append(data.rindex(b'"signature":"') + 20)
    if b'"fingerprint":"' in data:
        chosen.append(data.index(b'"fingerprint":"') + 30)
    return chosen


@pytest.fixture(scope="module")
def certified(tmp_path_factory):
    site = copy_site(template(tmp_path_factory), tmp_path_factory.mktemp("tamper") / "site")
    plan = site.plan()
    approval = site.approve(plan["plan"])
    code, result, err = run_cli(
        site.inventory, "purge", "execute", SITE, "--plan", plan["plan"], "--approval", approval
    )
    assert code == ExitCode.OK, err
    return site, plan, Path(approval), Path(result["certificate"])


@pytest.fixture
def planned(tmp_path_factory, tmp_path):
    site = copy_site(template(tmp_path_factory), tmp_path / "site")
    plan = site.plan()
    return site, Path(plan["plan"]), Path(site.approve(plan["plan"]))


def test_a_plan_or_approval_edited_by_one_byte_is_refused_and_nothing_is_destroyed(planned, capsys):
    site, plan, approval = planned
    before = site.snapshot()
    for path in (plan, approval):
        original = path.read_bytes()
        for position in _positions(original, 6):
            path.write_bytes(_edited(original, position))
            code, _out, err = run_cli(
                site.inventory,
                "purge",
                "execute",
                SITE,
                "--plan",
                str(plan),
                "--approval",
                str(approval),
                capsys=capsys,
            )
            assert code == ExitCode.REFUSED, (path.name, position, err)
            assert site.snapshot() == before
        path.write_bytes(original)
    assert site.store().state(SITE) == SiteState.FINAL_BACKUP_VERIFIED
    # Untouched again, the same files are accepted: the refusals were the edits'.
    code, _out, err = run_cli(
        site.inventory, "purge", "execute", SITE, "--plan", str(plan), "--approval", str(approval), capsys=capsys
    )
    assert code == ExitCode.OK, err


def test_a_certificate_edited_by_one_byte_fails_verification(certified, capsys):
    site, _plan, _approval, certificate = certified
    original = certificate.read_bytes()
    verify = ["certificate", "verify", str(certificate), "--public-key", str(site.public_key)]
    assert run_cli(site.inventory, *verify, capsys=capsys)[0] == ExitCode.OK
    try:
        for position in _positions(original, 25):
            certificate.write_bytes(_edited(original, position))
            code, _out, err = run_cli(site.inventory, *verify, capsys=capsys)
            assert code == ExitCode.VERDICT_FAILED, (position, err)
            assert "does NOT verify" in err or "damaged or edited" in err or "edited after" in err, err
    finally:
        certificate.write_bytes(original)


def test_a_certificate_whose_backups_or_ledger_changed_fails_verification(certified, capsys):
    site, plan, _approval, certificate = certified
    verify = ["certificate", "verify", str(certificate), "--public-key", str(site.public_key)]
    manifest = sorted((site.folder / "backups" / SITE).glob("*/manifest.json"))[0]
    original = manifest.read_bytes()
    manifest.write_bytes(original.replace(b'"rows":', b'"rows":9', 1))
    try:
        code, _out, err = run_cli(site.inventory, *verify, "--backups", str(site.folder / "backups"), capsys=capsys)
        assert code == ExitCode.VERDICT_FAILED and "not the one the certificate names" in err
    finally:
        manifest.write_bytes(original)
    ledger = site.ledger.read_bytes()
    site.ledger.write_bytes(ledger[: ledger.rindex(b"\n", 0, len(ledger) - 1) + 1])  # the last event cut
    try:
        code, _out, err = run_cli(site.inventory, *verify, "--ledger", str(site.ledger), capsys=capsys)
        assert code == ExitCode.VERDICT_FAILED and "ledger" in err
    finally:
        site.ledger.write_bytes(ledger)
    code, _out, err = run_cli(
        site.inventory,
        *verify,
        "--plan",
        str(Path(plan["plan"])),
        "--backups",
        str(site.folder / "backups"),
        "--ledger",
        str(site.ledger),
        capsys=capsys,
    )
    assert code == ExitCode.OK, err


def test_handover_waits_for_the_media_attestation_and_both_bind_to_the_certificate(certified, capsys, tmp_path):
    site, _plan, _approval, certificate = certified
    code, _out, err = run_cli(site.inventory, "purge", "handover", SITE, "--receiver", "Pham Van D", capsys=capsys)
    assert code == ExitCode.REFUSED and "attest-media" in err
    report = tmp_path / "nwipe.log"
    report.write_text("nwipe 0.34: /dev/sda S4EVNF0M123 PASS\n", encoding="utf-8")
    attest = [
        "purge",
        "attest-media",
        SITE,
        "--device",
        "S4EVNF0M123",
        "--method",
        "Purge: ATA SECURE ERASE",
        "--tool",
        "nwipe 0.34",
        "--report",
        str(report),
        "--date",
        "2025-09-30",
    ]
    code, media, err = run_cli(site.inventory, *attest, capsys=capsys)
    assert code == ExitCode.OK, err
    assert run_cli(site.inventory, *attest, capsys=capsys)[0] == ExitCode.REFUSED  # never overwritten
    code, handover, err = run_cli(
        site.inventory, "purge", "handover", SITE, "--receiver", "Pham Van D", "--date", "2025-10-01", capsys=capsys
    )
    assert code == ExitCode.OK and handover["date"] == "2025-10-01", err
    body = json.loads(Path(media["media_attestation"]).read_text(encoding="utf-8"))["body"]
    assert (
        body["devices"] == ["S4EVNF0M123"]
        and body["tool_report"]["sha256"] == hashlib.sha256(report.read_bytes()).hexdigest()
    )
    verify = [
        "certificate",
        "verify",
        str(certificate),
        "--public-key",
        str(site.public_key),
        "--addendum",
        media["media_attestation"],
        "--addendum",
        handover["handover"],
    ]
    code, check, err = run_cli(site.inventory, *verify, capsys=capsys)
    assert code == ExitCode.OK and len(check["checked"]) == 4, err
    path = Path(handover["handover"])
    original = path.read_bytes()
    path.write_bytes(original.replace(b"Pham Van D", b"Pham Van E"))
    try:
        assert run_cli(site.inventory, *verify, capsys=capsys)[0] == ExitCode.VERDICT_FAILED
    finally:
        path.write_bytes(original)
