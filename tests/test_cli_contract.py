"""The CLI's operator contract, command by command: the documented exit code for a typical failure,
the same with --debug (which adds the traceback) and with --json (exactly one JSON object on stdout,
success or failure), and --json/--debug accepted before or after the command."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from ts24_migrate.cli.main import cli, main, split_global_flags
from ts24_migrate.core.errors import ExitCode

SITE = "demo"


class Site:
    """One small demo site for the whole module, assessed once (so it has a ledger), plus what the
    failure cases need: an inventory whose legacy database is missing, a tampered copy of the ledger."""

    def __init__(self, folder: Path):
        from ts24_migrate.cli.commands.demo_data import write_demo_inventory
        from ts24_migrate.core.keys import generate_custodian_identity
        from ts24_migrate.core.signing import generate_signing_key

        self.folder = folder
        self.identity = folder / "keys" / "custodian.age-identity"
        recipient = generate_custodian_identity(self.identity)
        generate_signing_key(folder / "keys" / "signing.key")
        self.public_key = folder / "keys" / "signing.pub"
        self.signing_key = folder / "keys" / "signing.key"
        self.inventory = write_demo_inventory(
            folder,
            site_id=SITE,
            scale=0.03,
            seed=5,
            backup_recipients=[recipient],
            signing_key=Path("keys/signing.key"),
        )
        assert main(["-i", str(self.inventory), "assess", SITE]) == 0
        self.ledger = folder / "work" / "ledger" / f"{SITE}.jsonl"

        missing = folder / "secrets" / "missing.url"
        missing.write_text(f"sqlite:///{folder / 'legacy' / 'missing.sqlite'}\n", encoding="utf-8")
        missing.chmod(0o600)
        self.broken_inventory = folder / "sites-broken.yaml"
        self.broken_inventory.write_text(
            self.inventory.read_text(encoding="utf-8").replace(
                f"file:secrets/{SITE}.legacy.url", "file:secrets/missing.url"
            ),
            encoding="utf-8",
        )

        self.bad_inventory = folder / "sites-bad.yaml"
        self.bad_inventory.write_text(
            self.inventory.read_text(encoding="utf-8").replace("cutover: '2025-07-01'", "cutover: '2025-02-30'"),
            encoding="utf-8",
        )

        self.tampered_ledger = folder / "tampered.jsonl"
        lines = self.ledger.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[0] = lines[0].replace('"stage":"assess"', '"stage":"assesz"')
        self.tampered_ledger.write_text("".join(lines), encoding="utf-8")

        self.not_a_demo = folder / "not-a-demo"
        (self.not_a_demo / "keep.txt").parent.mkdir()
        (self.not_a_demo / "keep.txt").write_text("someone's files\n", encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    return Site(tmp_path_factory.mktemp("contract"))


# Commands that exist only in this test, for the failures no real command can be made to have on
# purpose: a bug, and Ctrl-C without a signal (test_cli_interrupt sends real ones).
def _raises(name: str, error: Callable[[], BaseException]) -> click.Command:
    @click.command(name)
    def command() -> None:
        raise error()

    return command


TEST_ONLY_COMMANDS = [
    _raises("test-bug", lambda: ZeroDivisionError("division by zero")),
    _raises("test-interrupt", KeyboardInterrupt),
]


@pytest.fixture
def test_only_commands():
    for command in TEST_ONLY_COMMANDS:
        cli.add_command(command)
    yield
    for command in TEST_ONLY_COMMANDS:
        cli.commands.pop(command.name)


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _paths(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMAND_PATHS = _paths(cli)

# (case, argv from the site, documented exit code). Every command has a typical failure here.
CASES: list[tuple[str, Callable[[Site], list[str]], int]] = [
    ("sites list: bad inventory", lambda s: ["-i", str(s.bad_inventory), "sites", "list"], ExitCode.USAGE),
    ("sites copies: unknown site", lambda s: ["-i", str(s.inventory), "sites", "copies", "nope"], ExitCode.USAGE),
    ("assess: unknown site", lambda s: ["-i", str(s.inventory), "assess", "nope"], ExitCode.USAGE),
    (
        "assess: legacy database missing",
        lambda s: ["-i", str(s.broken_inventory), "assess", SITE],
        ExitCode.UNREACHABLE,
    ),
    (
        "backup: legacy database missing",
        lambda s: ["-i", str(s.broken_inventory), "backup", SITE],
        ExitCode.UNREACHABLE,
    ),
    ("backup list: unknown site", lambda s: ["-i", str(s.inventory), "backup", "list", "nope"], ExitCode.USAGE),
    ("backup verify: unknown site", lambda s: ["-i", str(s.inventory), "backup", "verify", "nope"], ExitCode.USAGE),
    (
        "backup restore: unknown site",
        lambda s: [
            "-i",
            str(s.inventory),
            "backup",
            "restore",
            "nope",
            "--identity",
            str(s.identity),
            "--into-sqlite",
            str(s.folder / "r.sqlite"),
        ],
        ExitCode.USAGE,
    ),
    ("load: unknown site", lambda s: ["-i", str(s.inventory), "load", "nope"], ExitCode.USAGE),
    ("load: not backed up yet (a gate)", lambda s: ["-i", str(s.inventory), "load", SITE], ExitCode.REFUSED),
    ("validate: unknown site", lambda s: ["-i", str(s.inventory), "validate", "nope"], ExitCode.USAGE),
    ("report: unknown site", lambda s: ["-i", str(s.inventory), "report", "nope"], ExitCode.USAGE),
    (
        "reconcile run: site not loaded (a gate)",
        lambda s: ["-i", str(s.inventory), "reconcile", "run", SITE],
        ExitCode.REFUSED,
    ),
    ("reconcile run: unknown site", lambda s: ["-i", str(s.inventory), "reconcile", "run", "nope"], ExitCode.USAGE),
    (
        "reconcile verify-chain: unknown site",
        lambda s: ["-i", str(s.inventory), "reconcile", "verify-chain", "nope"],
        ExitCode.USAGE,
    ),
    (
        "reconcile restore-chain: unknown site",
        lambda s: [
            "-i",
            str(s.inventory),
            "reconcile",
            "restore-chain",
            "nope",
            "--identity",
            str(s.identity),
            "--into-sqlite",
            str(s.folder / "c.sqlite"),
        ],
        ExitCode.USAGE,
    ),
    ("migrate: unknown site", lambda s: ["-i", str(s.inventory), "migrate", "nope"], ExitCode.USAGE),
    (
        "migrate: legacy database missing",
        lambda s: ["-i", str(s.broken_inventory), "migrate", SITE],
        ExitCode.UNREACHABLE,
    ),
    ("demo: folder is not a demo", lambda s: ["demo", "--folder", str(s.not_a_demo)], ExitCode.USAGE),
    (
        "demo-data: no legacy database named",
        lambda s: ["demo-data", "--attachments", str(s.folder / "files")],
        ExitCode.USAGE,
    ),
    (
        "demo-advance: unknown site",
        lambda s: ["-i", str(s.inventory), "demo-advance", "nope", "--days", "1"],
        ExitCode.USAGE,
    ),
    (
        "keys generate: keys exist",
        lambda s: ["keys", "generate", "--out", str(s.folder / "keys"), "--only", "signing"],
        ExitCode.USAGE,
    ),
    (
        "backup repair: unknown site",
        lambda s: ["-i", str(s.inventory), "backup", "repair", "nope", "--backup", "x"],
        ExitCode.USAGE,
    ),
    (
        "purge prepare: unknown site",
        lambda s: ["-i", str(s.inventory), "purge", "prepare", "nope", "--identity", str(s.identity)],
        ExitCode.USAGE,
    ),
    (
        "purge plan: unknown site",
        lambda s: ["-i", str(s.inventory), "purge", "plan", "nope", "--key", str(s.signing_key), "--operator", "A"],
        ExitCode.USAGE,
    ),
    (
        "purge approve: not a plan",
        lambda s: ["-i", str(s.inventory), "purge", "approve", str(s.inventory), "--key", str(s.signing_key)],
        ExitCode.REFUSED,
    ),
    (
        "purge execute: unknown site",
        lambda s: ["-i", str(s.inventory), "purge", "execute", "nope", "--plan", str(s.inventory)],
        ExitCode.USAGE,
    ),
    (
        "purge attest-media: not purged (a gate)",
        lambda s: [
            "-i",
            str(s.inventory),
            "purge",
            "attest-media",
            SITE,
            "--device",
            "S4EV",
            "--method",
            "Purge",
            "--tool",
            "nwipe",
            "--report",
            str(s.inventory),
            "--operator",
            "A",
        ],
        ExitCode.REFUSED,
    ),
    (
        "purge handover: not purged (a gate)",
        lambda s: ["-i", str(s.inventory), "purge", "handover", SITE, "--receiver", "B", "--operator", "A"],
        ExitCode.REFUSED,
    ),
    (
        "certificate verify: not a certificate",
        lambda s: ["certificate", "verify", str(s.inventory), "--public-key", str(s.public_key)],
        ExitCode.VERDICT_FAILED,
    ),
    (
        "certificate summary: bad inventory",
        lambda s: ["-i", str(s.bad_inventory), "certificate", "summary"],
        ExitCode.USAGE,
    ),
    ("fleet status: bad inventory", lambda s: ["-i", str(s.bad_inventory), "fleet", "status"], ExitCode.USAGE),
    ("fleet check: unknown site", lambda s: ["-i", str(s.inventory), "fleet", "check", "nope"], ExitCode.USAGE),
    (
        "audit verify: tampered ledger",
        lambda s: ["audit", "verify", str(s.tampered_ledger), "--public-key", str(s.public_key)],
        ExitCode.VERDICT_FAILED,
    ),
    ("audit show: no ledger", lambda s: ["audit", "show", str(s.folder / "none.jsonl")], ExitCode.USAGE),
    ("bug", lambda s: ["test-bug"], ExitCode.INTERNAL),
    ("Ctrl-C", lambda s: ["test-interrupt"], ExitCode.INTERRUPTED),
]
# Every command also refuses an unknown option (click's usage error).
CASES += [
    (f"{' '.join(path)}: unknown option", lambda s, path=path: [*path, "--no-such-option"], ExitCode.USAGE)
    for path in COMMAND_PATHS
]

# The classes --json names (README, "--json output"), whatever subclass a stage raised.
JSON_ERROR_CLASSES = {
    "ConfigError",
    "LoginRefused",
    "UsageError",
    "UnreachableError",
    "FolderUnusable",
    "VerificationError",
    "GateRefused",
    "InternalError",
    "Interrupted",
}

MODES: dict[str, Callable[[list[str]], list[str]]] = {
    "plain": lambda argv: argv,
    "--debug after": lambda argv: [*argv, "--debug"],
    "--json after": lambda argv: [*argv, "--json"],
    "--json --debug before": lambda argv: ["--json", "--debug", *argv],
}


def test_every_command_has_a_failure_case():
    covered = {case.split(":")[0] for case, _, _ in CASES if not case.endswith("unknown option")}
    commands = {" ".join(path) for path in COMMAND_PATHS}
    assert commands <= covered | {"backup create"}, commands - covered  # `backup SITE` is `backup create SITE`


def test_every_documented_exit_code_has_a_case():
    documented = {code for name, code in vars(ExitCode).items() if not name.startswith("_") and code}
    assert documented == {code for _, _, code in CASES}


def test_the_readme_exit_code_table_is_the_contract():
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Exit codes") : readme.index("### `--json` output")]
    listed = {int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)}
    assert listed == {code for name, code in vars(ExitCode).items() if not name.startswith("_")}
    json_section = readme[readme.index("### `--json` output") : readme.index("## Reading the reports")]
    assert JSON_ERROR_CLASSES == set(re.findall(r"`([A-Z][A-Za-z]+)`", json_section))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case, argv, code", CASES, ids=[case for case, _, _ in CASES])
def test_failure_exit_code_is_the_same_in_every_mode(site, test_only_commands, capsys, case, argv, code, mode):
    assert main(MODES[mode](argv(site))) == code
    out, err = capsys.readouterr()
    click_usage = case.endswith("unknown option")
    if "--json" in mode:
        document = json.loads(out)  # exactly one JSON object: json.loads refuses anything after it
        assert out.count("\n") == 1
        assert document["ok"] is False and document["exit_code"] == code
        assert document["error"]["class"] in JSON_ERROR_CLASSES and document["error"]["message"], document
    lines = err.strip().splitlines()
    assert lines, "a failure always says why on stderr"
    if "--debug" in mode and not click_usage:
        assert "Traceback (most recent call last)" in err  # and yet the exit code stayed
    else:
        assert "Traceback" not in err
        assert lines[-1].startswith(("error: ", "internal error: ", "Error: ")), lines[-1]
    assert "Traceback" not in out


def test_error_classes_in_json(site, test_only_commands, capsys):
    expected = {"test-bug": "InternalError", "test-interrupt": "Interrupted"}
    for command, kind in expected.items():
        main(["--json", command])
        assert json.loads(capsys.readouterr().out)["error"]["class"] == kind
    main(["-i", str(site.broken_inventory), "assess", SITE, "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["class"] == "UnreachableError" and "missing.sqlite" in error["message"]


@pytest.mark.parametrize("position", ["before the command", "after the group", "after the command"])
def test_json_anywhere_on_success_is_one_object(site, capsys, position):
    argv = {
        "before the command": ["--json", "sites", "list"],
        "after the group": ["sites", "--json", "list"],
        "after the command": ["sites", "list", "--json"],
    }[position]
    assert main(["-i", str(site.inventory), *argv]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["exit_code"] == 0
    assert document["sites"][0]["site"] == SITE and document["sites"][0]["state"] == "ASSESSED"


def test_json_after_subcommand_arguments_of_assess_and_audit(site, capsys):
    assert main(["-i", str(site.inventory), "assess", SITE, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["summary"]["tables"] == len(
        json.loads((site.folder / "truth" / f"{SITE}.truth.json").read_text(encoding="utf-8"))["tables"]
    )
    assert main(["audit", "verify", str(site.ledger), "--public-key", str(site.public_key), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_a_failed_verdict_under_json_is_one_object_with_its_findings(site, capsys):
    """A command that has something to show when its verdict fails puts it into the one object."""
    assert (
        main(["--json", "audit", "verify", str(site.tampered_ledger), "--public-key", str(site.public_key)])
        == ExitCode.VERDICT_FAILED
    )
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and document["exit_code"] == 1
    assert document["error"]["class"] == "VerificationError" and document["problems"], document


def test_a_refused_stage_under_json_carries_its_outcome(site, capsys):
    assert main(["-i", str(site.inventory), "reconcile", "run", SITE, "--json"]) == ExitCode.REFUSED
    document = json.loads(capsys.readouterr().out)
    assert document["error"]["class"] == "GateRefused"
    assert document["outcome"]["verdict"] == "REFUSED" and document["outcome"]["site_id"] == SITE, document


def test_flags_after_a_double_dash_are_left_alone():
    assert split_global_flags(["audit", "show", "--", "--json"]) == (["audit", "show", "--", "--json"], False, False)
    assert split_global_flags(["sites", "list", "--debug", "--json"]) == (["sites", "list"], True, True)


def test_json_keeps_stdout_for_the_object_in_a_real_process(site):
    """In a real process, whatever else is printed goes to stderr (here: the progress of a demo-data)."""
    import subprocess
    import sys

    out = site.folder / "json-demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ts24_migrate",
            "demo-data",
            "--legacy-sqlite",
            str(out / "legacy.sqlite"),
            "--attachments",
            str(out / "files"),
            "--scale",
            "0.02",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["site_id"] == "demo" and document["tables"]
    shutil.rmtree(out)
