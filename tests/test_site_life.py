"""A site's life through the CLI: each stage refuses until the one before it is done, and every
next step a command suggests is run, in the situation that suggested it, and works.

The demo site (SQLite legacy and target, real age keys) is taken from NEW to DRAINED with the
mishaps an operator meets on the way (an unverified backup, a wrong custodian key, a damaged
backup, a load run again); at every turn the outcome line names the next step, and the test runs
exactly that command.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest

from ts24_migrate.cli.main import main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.runs import site_life
from ts24_migrate.runs.app import App
from ts24_migrate.runs.site_life import IDENTITY_PLACEHOLDER, SiteFacts, Verification

ROOT = Path(__file__).resolve().parents[1]
SITE = "demo"
OUTCOME = re.compile(
    r"^outcome: (?P<verdict>[A-Z]+) \| site (?P<site>\S+): (?P<state>[A-Z_]+) \| "
    r"report: (?P<report>.+?) \| next \((?P<who>\w+)\): (?P<command>ts24-migrate [^(]+?) "
    r"\((?P<why>.*)\)$"
)
# Every kind of next step steps.site_life can suggest (checked against its source below); the walk
# must meet and run each of them.
SUGGESTIONS = {
    ("IT", "assess"),
    ("IT", "backup"),
    ("IT", "backup verify"),
    ("IT", "load"),
    ("custodian", "backup verify --identity"),
    ("IT", "validate"),
    ("IT", "reconcile run"),
    ("custodian", "purge prepare --identity"),
}
# The retirement's suggestions after `purge prepare`: walked by tests/test_purge_life.py.
RETIREMENT_SUGGESTIONS = {
    ("IT", "purge plan --key"),
    ("approver", "purge approve --key"),
    ("IT", "purge execute --plan"),
    ("IT", "purge attest-media --device --method --tool --report"),
    ("IT", "purge handover --receiver"),
    ("auditor", "certificate verify --backups --ledger --addendum --addendum"),
}


class Walk:
    """Runs commands on the demo site the way an operator types them, and follows their advice."""

    def __init__(self, capsys, site):
        self.capsys, self.site = capsys, site
        self.inventory = str(site.inventory)
        self.suggested: set[tuple[str, str]] = set()

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["-i", self.inventory, *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def outcome(self, out: str) -> re.Match:
        last = out.strip().splitlines()[-1]
        match = OUTCOME.match(last)
        assert match, f"the last line is not an outcome line: {last!r}"
        assert match["site"] == SITE
        return match

    def refused(self, *args: str) -> re.Match:
        """A refused stage: exit 4, one error line naming the step it needs, the same as its outcome line."""
        code, out, err = self.run(*args)
        assert code == ExitCode.REFUSED, (args, code, err)
        (line,) = err.strip().splitlines()
        outcome = self.outcome(out)
        assert outcome["verdict"] == "REFUSED"
        assert line.startswith(
            f"error: {' '.join(a for a in args if a != SITE)} of site {SITE} refused: "
        ) or line.startswith(f"error: {args[0]} of site {SITE} refused: "), line
        assert f"first, {outcome['who']} runs `{outcome['command']}` ({outcome['why']})" in line
        return outcome

    def follow(self, outcome: re.Match, *, expect: int = ExitCode.OK) -> re.Match:
        """Run the suggested next step as printed (the custodian's identity put in); return its outcome."""
        args = shlex.split(outcome["command"])
        assert args[:3] == ["ts24-migrate", "-i", self.inventory], args
        args = [str(self.site.identity) if a == IDENTITY_PLACEHOLDER else a for a in args[3:]]
        kind = " ".join(a for a in args if a != SITE and a != str(self.site.identity))
        self.suggested.add((outcome["who"], kind))
        code, out, err = self.run(*args)
        assert code == expect, (args, code, err)
        return self.outcome(out)


def _state(site) -> SiteState:
    app = App(site.inventory)
    try:
        return app.control_store.state(SITE)
    finally:
        app.close()


def _damage_a_part(site) -> None:
    part = next((site.folder / "backups" / SITE).rglob("part-000001.parquet.age"))
    data = bytearray(part.read_bytes())
    data[-1] ^= 0xFF
    part.write_bytes(bytes(data))


@pytest.mark.slow
def test_every_stage_refuses_until_its_step_is_done_and_every_suggested_step_works(demo_site, capsys, tmp_path):
    site = demo_site(scale=0.05)
    walk = Walk(capsys, site)

    # NEW: everything but the assessment is refused, and each refusal names the assessment.
    for args in (
        ["load", SITE],
        ["backup", SITE],
        ["validate", SITE],
        ["reconcile", "run", SITE],
        ["report", SITE],
        ["backup", "verify", SITE],
    ):
        step = walk.refused(*args)
        assert (step["who"], step["command"].split()[-2:]) == ("IT", ["assess", SITE])
    assert _state(site) is SiteState.NEW
    step = walk.follow(step)
    assert step["verdict"] == "DONE" and step["state"] == "ASSESSED" and step["report"].endswith("assessment.html")

    assert walk.refused("load", SITE)["command"] == step["command"]  # back it up first
    step = walk.follow(step)  # backup
    assert step["state"] == "BACKED_UP"
    assert walk.refused("load", SITE)["command"] == step["command"]  # verify it first
    step = walk.follow(step)  # backup verify (signature and ciphertext hashes)
    assert step["verdict"] == "PASSED" and step["state"] == "BACKED_UP"
    assert walk.refused("validate", SITE)["command"] == step["command"]  # load first
    step = walk.follow(step)  # load
    assert step["state"] == "LOADED" and step["who"] == "custodian"

    # Loaded, not decrypted by a custodian: reconcile refuses, validate fails, both advise the custodian.
    assert walk.refused("reconcile", "run", SITE)["command"] == step["command"]
    code, out, _ = walk.run("validate", SITE)
    assert code == ExitCode.VERDICT_FAILED and walk.outcome(out)["command"] == step["command"]
    code, out, _ = walk.run("report", SITE)  # the failed verdict's report exists: report rebuilds it
    assert code == ExitCode.OK and walk.outcome(out)["verdict"] == "FAILED"

    # A key that is not a recipient: the operator's mistake, exit 2, nothing recorded.
    stranger = tmp_path / "stranger.age-identity"
    assert main(["keys", "generate", "--out", str(tmp_path), "--custodian", "stranger"]) == ExitCode.OK
    code, out, err = walk.run("backup", "verify", SITE, "--identity", str(stranger))
    assert (
        code == ExitCode.USAGE and err.startswith("error: wrong key: the identity ") and "nothing was recorded" in err
    )
    assert walk.outcome(out)["command"] == step["command"]

    # The backup is damaged behind the pipeline's back: the check fails, and the load is refused until
    # a new backup is made and verified.
    _damage_a_part(site)
    code, out, err = walk.run("backup", "verify", SITE)
    assert code == ExitCode.VERDICT_FAILED and "ciphertext SHA-256 or size does not match" in err
    step = walk.outcome(out)
    assert step["verdict"] == "FAILED" and step["command"].split()[-2:] == ["backup", SITE]
    assert walk.refused("load", SITE)["command"] == step["command"]
    step = walk.follow(step)  # a new backup
    step = walk.follow(step)  # verified (no key)
    assert step["who"] == "custodian"
    step = walk.follow(step)  # the custodian decrypts it
    assert step["verdict"] == "PASSED" and step["state"] == "LOADED"  # a state never moves back
    assert step["command"].split()[-2:] == ["validate", SITE]  # the latest validation failed: again
    step = walk.follow(step)
    assert step["verdict"] == "PASSED" and step["state"] == "VALIDATED"
    assert step["report"].endswith("validation-report.html") and Path(step["report"]).is_file()

    # Loaded again after the validation: reconcile waits for a validation of that load.
    code, out, _ = walk.run("load", SITE)
    assert code == ExitCode.OK
    step = walk.outcome(out)
    assert walk.refused("reconcile", "run", SITE)["command"] == step["command"]
    step = walk.follow(step)  # validate
    assert step["command"].split()[-3:] == ["reconcile", "run", SITE]

    step = walk.follow(step)  # reconcile run
    assert step["state"] == "RECONCILING" and step["report"].endswith("reconciliation.html")
    assert walk.run("demo-advance", SITE, "--days", "30", "--drain")[0] == ExitCode.OK
    step = walk.follow(step)  # reconcile run: drained now
    assert step["state"] == "DRAINED" and step["who"] == "custodian"
    assert walk.run("reconcile", "verify-chain", SITE)[0] == ExitCode.OK  # the auditor's optional check
    step = walk.follow(step)  # purge prepare, with the custodian's identity
    assert step["verdict"] == "PASSED" and step["state"] == "FINAL_BACKUP_VERIFIED"
    assert step["command"].split()[3:6] == ["purge", "plan", SITE]  # the rest: tests/test_purge_life.py

    assert walk.suggested == SUGGESTIONS


def test_every_next_step_the_code_can_suggest_is_one_the_walk_runs():
    """A new kind of suggestion in steps.site_life fails here until the walk above exercises it."""
    tree = ast.parse(Path(site_life.__file__).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "NextStep" and len(node.args) >= 2:
            who, args = node.args[0], node.args[1]
            if isinstance(args, ast.Tuple) and args.elts:
                words = [e.value for e in args.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                words = [w for w in words if w not in site_life.PLACEHOLDERS]
                found.add((who.value, " ".join(words)))
    assert found == SUGGESTIONS | RETIREMENT_SUGGESTIONS


def test_a_wrong_key_is_never_recorded_as_the_backups_latest_verification(demo_site, capsys, tmp_path):
    site = demo_site(scale=0.03)
    walk = Walk(capsys, site)
    for args in (["assess", SITE], ["backup", SITE], ["backup", "verify", SITE, "--identity", str(site.identity)]):
        assert walk.run(*args)[0] == ExitCode.OK
    assert main(["keys", "generate", "--out", str(tmp_path), "--custodian", "bob"]) == ExitCode.OK
    app = App(site.inventory)
    before = app.control_store.runs(SITE, "verify-backup")
    code, _, err = walk.run("backup", "verify", SITE, "--identity", str(tmp_path / "bob.age-identity"))
    assert code == ExitCode.USAGE and "wrong key" in err and "is not one of the 1 recipient(s)" in err
    assert app.control_store.runs(SITE, "verify-backup") == before
    facts = SiteFacts.read(app, SITE)
    assert facts.backup.verification is Verification.DECRYPTED and facts.state is SiteState.BACKUP_VERIFIED
    # A check without a key after the custodian's does not undo it either.
    assert walk.run("backup", "verify", SITE)[0] == ExitCode.OK
    assert SiteFacts.read(app, SITE).backup.verification is Verification.DECRYPTED
    app.close()


def test_the_latest_page_points_at_each_stage_report_and_survives_a_copy(demo_site, capsys, tmp_path):
    import shutil

    site = demo_site(scale=0.03)
    walk = Walk(capsys, site)
    for args in (["assess", SITE], ["backup", SITE], ["backup", "verify", SITE]):
        assert walk.run(*args)[0] == ExitCode.OK
    latest = site.folder / "work" / "sites" / SITE / "latest"
    index = json.loads((latest / "index.json").read_text(encoding="utf-8"))
    assert index["state"] == "BACKED_UP" and index["next"]["command"].endswith(f"load {SITE}")
    assert [s["stage"] for s in index["stages"]] == ["assess", "backup", "verify-backup"]
    (link,) = index["stages"][0]["reports"].values()
    assert link.startswith("../reports/") and (latest / link).resolve().is_file()
    # A copy of the whole folder (an archive, an auditor's disk) still links: relative links, no symlinks.
    copy = tmp_path / "copy"
    shutil.copytree(site.folder / "work", copy)
    html = (copy / "sites" / SITE / "latest" / "index.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert hrefs and all((copy / "sites" / SITE / "latest" / h).resolve().is_file() for h in hrefs)
    assert not any(p.is_symlink() for p in latest.rglob("*"))
    # A refused stage leaves the page as it was, naming the same next step.
    assert walk.run("validate", SITE)[0] == ExitCode.REFUSED
    assert json.loads((latest / "index.json").read_text(encoding="utf-8"))["next"] == index["next"]


def test_the_commands_that_error_messages_suggest_run_as_printed(demo_site, capsys, monkeypatch):
    import yaml

    site = demo_site(scale=0.03)
    walk = Walk(capsys, site)
    # No signing key yet: the error says how to make one; made as printed, the stage runs.
    data = yaml.safe_load(site.inventory.read_text(encoding="utf-8"))
    key = data.pop("signing_key")
    site.inventory.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    for name in ("signing.key", "signing.pub"):
        (site.folder / key).with_name(name).unlink()
    code, _, err = walk.run("assess", SITE)
    assert code == ExitCode.USAGE and "field signing_key" in err
    monkeypatch.chdir(site.inventory.parent)  # "in the inventory's folder"
    suggested = shlex.split(err.split("`")[1])
    assert suggested[0] == "ts24-migrate" and main(suggested[1:]) == ExitCode.OK
    data["signing_key"] = err.split("set signing_key: ")[1].strip()
    site.inventory.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert walk.run("assess", SITE)[0] == ExitCode.OK

    # A damaged audit ledger: every stage stops before writing to it, and the check it suggests runs
    # as printed (with the public key), naming the damage.
    ledger = site.folder / "work" / "ledger" / f"{SITE}.jsonl"
    with ledger.open("ab") as handle:
        handle.write(b'{"seq": 99, "cut short')
    code, _, err = walk.run("assess", SITE)
    assert code == ExitCode.VERDICT_FAILED and "ends with an incomplete line" in err
    suggested = shlex.split(err.split("`")[1])
    assert suggested[:3] == ["ts24-migrate", "audit", "verify"] and "--public-key" in suggested
    capsys.readouterr()
    assert main(suggested[1:]) == ExitCode.VERDICT_FAILED
    assert "not intact" in capsys.readouterr().err


def test_sites_list_shows_each_sites_next_step(demo_site, capsys):
    site = demo_site(scale=0.03)
    walk = Walk(capsys, site)
    for args in (["assess", SITE], ["backup", SITE]):
        assert walk.run(*args)[0] == ExitCode.OK
    capsys.readouterr()
    assert main(["-i", walk.inventory, "--json", "sites", "list"]) == ExitCode.OK
    (row,) = json.loads(capsys.readouterr().out)["sites"]
    assert row["state"] == "BACKED_UP" and row["next"]["who"] == "IT"
    assert row["next"]["command"] == f"ts24-migrate -i {walk.inventory} backup verify {SITE}"
    assert main(["-i", walk.inventory, "sites", "list"]) == ExitCode.OK
    assert "IT: backup verify (backup " in capsys.readouterr().out
