"""The daily check (check-sites deployment, `fleet check`): a tampered backup or ledger blocks its site.

The check verifies each site's backup chain (signatures, parent links, the hash of every
encrypted part) and its audit ledger without any key, records a `check` run, and fleet status
shows a failed check as `blocked` until a later check passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from backups.manifest import read_manifest
from backups.verify import manifest_parts
from ts24_migrate.cli.main import main
from ts24_migrate.core.errors import ExitCode, VerificationError
from ts24_migrate.runs.app import App
from ts24_migrate.runs.fleet_status import read_fleet_status

ROOT = Path(__file__).resolve().parents[1]


def _status(inventory: Path, site_id: str):
    app = App(inventory)
    try:
        return next(s for s in read_fleet_status(app.control_store, app.inventory).sites if s.site_id == site_id)
    finally:
        app.close()


def test_the_check_is_deployed_daily():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in config["deployments"] if d["name"] == "check-sites"]
    assert deployment["entrypoint"] == "flows/check_sites.py:check_sites"
    (schedule,) = deployment["schedules"]
    minute, hour, *every_day = schedule["cron"].split()
    assert every_day == ["*", "*", "*"] and schedule["timezone"] == "Asia/Ho_Chi_Minh"


@pytest.mark.prefect
@pytest.mark.slow
def test_a_tampered_backup_or_ledger_blocks_its_site_until_a_check_passes(prefect_server, demo_site, capsys):
    from flows.check_sites import check_sites

    site = demo_site(scale=0.02)
    for step in (["assess", "demo"], ["backup", "demo"]):
        assert main(["-i", str(site.inventory), "--json", *step]) == ExitCode.OK
    backup_dir = Path(App(site.inventory).control_store.latest_run("demo", "backup").figures["backup_dir"])
    parts = len(list(manifest_parts(read_manifest(backup_dir))))
    events = len((site.folder / "work" / "ledger" / "demo.jsonl").read_text(encoding="utf-8").splitlines())
    assert check_sites(inventory=str(site.inventory)) == {
        "demo": {"outcome": "passed", "parts_checked": parts, "ledger_events": events}
    }
    assert _status(site.inventory, "demo").check.outcome == "succeeded"

    # One byte of one encrypted part changed behind the pipeline's back.
    part = sorted((site.folder / "backups" / "demo").glob("*/parts/HO_SO/*.age"))[0]
    original = part.read_bytes()
    part.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(VerificationError, match=r"1 of 1 sites failed the daily check: demo"):
        check_sites(inventory=str(site.inventory))
    status = _status(site.inventory, "demo")
    assert status.attention.label == "blocked" and status.next.who == "IT"
    assert status.next.command == f"ts24-migrate -i {site.inventory} fleet check demo"
    (blocker,) = status.blockers
    assert (blocker.stage, blocker.error_class) == ("check", "VerificationError")
    recorded = App(site.inventory).control_store.latest_run("demo", "check", outcome="failed")
    assert recorded.run_id == blocker.run_id and recorded.figures["chain"]["ok"] is False
    assert any(
        "HO_SO part 1" in problem and "ciphertext SHA-256" in problem for problem in recorded.figures["problems"]
    )

    # The part put back, and an event of the ledger edited: blocked still, by the ledger now.
    part.write_bytes(original)
    ledger = site.folder / "work" / "ledger" / "demo.jsonl"
    lines = ledger.read_text(encoding="utf-8").splitlines(keepends=True)
    event = json.loads(lines[1])
    event["data"]["figures"] = {"tables": 99}
    edited = lines[:1] + [json.dumps(event) + "\n"] + lines[2:]
    ledger.write_text("".join(edited), encoding="utf-8")
    capsys.readouterr()
    assert main(["-i", str(site.inventory), "fleet", "check", "demo"]) == ExitCode.VERDICT_FAILED
    out = capsys.readouterr().out
    assert "site demo: BLOCKED" in out and "ledger: " in out
    assert ledger.read_text(encoding="utf-8") == "".join(edited)  # a damaged ledger is left as found
    status = _status(site.inventory, "demo")
    assert status.attention.label == "blocked"
    assert (
        App(site.inventory).control_store.latest_run("demo", "check", outcome="failed").figures["ledger"]["ok"] is False
    )

    # Both put back: the next check passes and the site is no longer blocked.
    ledger.write_text("".join(lines), encoding="utf-8")
    assert main(["-i", str(site.inventory), "fleet", "check"]) == ExitCode.OK
    status = _status(site.inventory, "demo")
    assert status.check.outcome == "succeeded" and status.blockers == () and status.attention.label == "to do"
