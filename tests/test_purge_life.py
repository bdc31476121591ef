"""A drained site's retirement through the CLI, each next step run exactly as printed.

From DRAINED the outcome lines lead through `purge prepare` (the custodian), `purge plan` (the
operator, own key), `purge approve` (a listed approver), `purge execute`, `purge attest-media`,
`purge handover` (the operator) and `certificate verify` (the auditor); the test fills in only the
placeholders a person would (their key, the disk serial, the receiver) and checks that `sites list`
and latest/index.json name the same step at every state.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from test_purge_support import SITE, copy_site, run_cli, template
from test_site_life import RETIREMENT_SUGGESTIONS, Walk

from ts24_migrate.cli.main import main
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.runs import site_life

pytestmark = pytest.mark.slow


class RetirementWalk(Walk):
    def __init__(self, capsys, site, fill: dict[str, str]):
        super().__init__(capsys, site)
        self.fill = {site_life.IDENTITY_PLACEHOLDER: str(site.identity), **fill}

    def follow_as_printed(self, outcome, *, expect: int = ExitCode.OK) -> tuple[str, str]:
        args = shlex.split(outcome["command"])
        assert args[:3] == ["ts24-migrate", "-i", self.inventory], args
        # The kind of step as steps.site_life spells it: no site, paths or placeholders; "--approval" is
        # repeated there per approval found, so it is not part of the kind.
        kind = " ".join(
            a for a in args[3:] if a != SITE and a not in site_life.PLACEHOLDERS and "/" not in a and a != "--approval"
        )
        self.suggested.add((outcome["who"], kind))
        args = [self.fill.get(a, a) for a in args[3:]]
        code, out, err = self.run(*args)
        assert code == expect, (args, code, err)
        return out, err

    def follow(self, outcome, *, expect: int = ExitCode.OK):
        return self.outcome(self.follow_as_printed(outcome, expect=expect)[0])

    def listed_next(self) -> dict:
        """The site's next step as `sites list` and latest/index.json both give it (they must agree)."""
        self.capsys.readouterr()
        assert main(["-i", self.inventory, "--json", "sites", "list"]) == ExitCode.OK
        (row,) = json.loads(self.capsys.readouterr().out)["sites"]
        latest = self.site.folder / "work" / "sites" / SITE / "latest" / "index.json"
        index = json.loads(latest.read_text(encoding="utf-8"))
        assert index["next"] == row["next"] and index["state"] == row["state"], (index, row)
        return row


def _summary_row(site) -> dict:
    """The site's row of `certificate summary`, checked against the summary.json and .html it writes."""
    code, summary, err = run_cli(site.inventory, "certificate", "summary")
    assert code == ExitCode.OK, err
    (row,) = summary["sites"]
    assert summary["certified"] == 1 and row["site_id"] == SITE and row["state"] == "CERTIFIED"
    assert row["date"] and row["server"]["kind"] == "sqlite"
    written = json.loads(Path(summary["json"]).read_text(encoding="utf-8"))
    assert written["sites"][0]["certificate_sha256"] == row["certificate_sha256"]
    html = Path(summary["html"]).read_text(encoding="utf-8")
    assert row["certificate_sha256"] in html and str(site.folder) not in html  # paths by name, not absolute
    return row


def test_a_drained_sites_retirement_follows_its_next_steps_to_a_verified_certificate(
    tmp_path_factory, tmp_path, capsys
):
    site = copy_site(template(tmp_path_factory, prepared=False), tmp_path / "site")
    report = tmp_path / "nwipe-demo.log"
    report.write_text("nwipe 0.34: 2 disks, pass 1/1, verified\n", encoding="utf-8")
    walk = RetirementWalk(
        capsys,
        site,
        {
            site_life.KEY_PLACEHOLDER: str(site.key("operator")),
            site_life.SERIAL_PLACEHOLDER: "S4EVNF0M123",
            site_life.METHOD_PLACEHOLDER: "Purge: ATA SECURE ERASE ENHANCED",
            site_life.TOOL_PLACEHOLDER: "nwipe 0.34",
            site_life.REPORT_PLACEHOLDER: str(report),
            site_life.RECEIVER_PLACEHOLDER: "Pham Van D",
        },
    )

    # DRAINED: a plan is refused (exit 4), and its outcome line names the custodian's `purge prepare`.
    code, out, err = walk.run("purge", "plan", SITE, "--key", str(site.key("operator")))
    assert code == ExitCode.REFUSED and err.startswith("error: ")
    step = walk.outcome(out)
    assert step["verdict"] == "REFUSED" and step["state"] == "DRAINED" and step["who"] == "custodian"
    assert step["command"].split()[3:6] == ["purge", "prepare", SITE]
    walk.run("assess", SITE, "--server-moved")  # refresh latest/ (copy_site re-assessed before the page moved)
    assert walk.listed_next()["next"]["command"] == step["command"]

    step = walk.follow(step)  # purge prepare --identity (the custodian's)
    assert (step["verdict"], step["state"], step["who"]) == ("PASSED", "FINAL_BACKUP_VERIFIED", "IT")
    assert step["command"].split()[3:6] == ["purge", "plan", SITE]
    assert walk.listed_next()["next"]["command"] == step["command"]

    step = walk.follow(step)  # purge plan --key (the operator's)
    assert step["state"] == "FINAL_BACKUP_VERIFIED" and step["who"] == "approver"
    assert step["report"].endswith("plan.html") and "0 of 1 approval(s)" in step["why"]
    assert walk.listed_next()["next"]["command"] == step["command"]
    # The operator made the plan: their own approval is refused and counts for nothing.
    walk.follow_as_printed(step, expect=ExitCode.REFUSED)
    assert walk.listed_next()["next"]["who"] == "approver"
    walk.fill[site_life.KEY_PLACEHOLDER] = str(site.key("approver-b"))
    step = walk.follow(step)  # purge approve --key (a listed approver's)
    assert step["who"] == "IT" and step["command"].split()[3:6] == ["purge", "execute", SITE]
    assert "--approval" in step["command"]
    assert walk.listed_next()["next"]["command"] == step["command"]

    step = walk.follow(step)  # purge execute --plan --approval
    assert (step["verdict"], step["state"]) == ("PASSED", "CERTIFIED")
    assert step["report"].endswith("certificate.html")
    assert step["command"].split()[3:6] == ["purge", "attest-media", SITE]
    row = _summary_row(site)
    assert (row["media_attestation"], row["handover"]) == ("pending", "pending")
    assert len(row["certificate_sha256"]) == 64
    # The handover before the media attestation is refused, and says what is due instead.
    code, out, _ = walk.run("purge", "handover", SITE, "--receiver", "Pham Van D")
    assert code == ExitCode.REFUSED and walk.outcome(out)["command"] == step["command"]

    step = walk.follow(step)  # purge attest-media
    assert step["state"] == "CERTIFIED" and step["command"].split()[3:6] == ["purge", "handover", SITE]
    step = walk.follow(step)  # purge handover
    assert step["state"] == "CERTIFIED" and step["who"] == "auditor"
    assert walk.listed_next()["next"]["command"] == step["command"]
    out, _ = walk.follow_as_printed(step)  # certificate verify, with the backups, ledger and both addenda
    assert "verifies" in out and out.count("addendum") == 2
    assert f"({row['certificate_sha256']})" in out  # the summary names the certificate that verifies
    row = _summary_row(site)
    assert (row["media_attestation"], row["handover"]) == ("done", "done")

    assert walk.suggested >= RETIREMENT_SUGGESTIONS
    assert {
        s
        for s in walk.suggested
        if s[1].startswith(
            ("purge plan", "purge approve", "purge execute", "purge attest", "purge handover", "certificate")
        )
    } == RETIREMENT_SUGGESTIONS
