"""`ts24-migrate demo --through purge`: the demo site's whole life, from NEW to a verified certificate."""

from __future__ import annotations

import json

import pytest

from ts24_migrate.cli.main import main
from ts24_migrate.core.errors import ExitCode

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_demo_through_purge_ends_with_a_verified_certificate(prefect_server, tmp_path, capsys):
    folder = tmp_path / "demo"
    assert main(["demo", "--folder", str(folder), "--scale", "0.03", "--through", "purge"]) == ExitCode.OK
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == f"demo PASSED: {folder}"
    assert any(line.startswith("  certificate of sanitization: ") and line.endswith("verified offline") for line in out)
    assert out[-1].startswith("outcome: PASSED | site demo: CERTIFIED | report: ")
    assert out[-1].split(" | ")[2].endswith("certificate.html")
    assert "purge attest-media demo" in out[-1]  # the operator's next step: the disks
    # Nothing of the legacy site is left, and the certificate verifies again with the public key only.
    assert not any((folder / "attachments" / "demo").rglob("*"))
    (certificate,) = (folder / "work" / "sites" / "demo" / "purge").glob("*/certificate.json")
    body = json.loads(certificate.read_text(encoding="utf-8"))["body"]
    assert body["approvals"]["given"][0]["approver"] == "Demo Approver"
    assert (
        main(
            [
                "-i",
                str(folder / "sites.yaml"),
                "certificate",
                "verify",
                str(certificate),
                "--public-key",
                str(folder / "keys" / "signing.pub"),
                "--backups",
                str(folder / "backups"),
                "--ledger",
                str(folder / "work" / "ledger" / "demo.jsonl"),
            ]
        )
        == ExitCode.OK
    )
