"""`ts24-migrate reconcile ...` and the `reconcile-site` flow on a demo inventory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_stages_support import through_inventory

from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.main import cli, main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.runs.app import App


def _demo_inventory(tmp_path) -> Path:
    """A demo site with a custodian (alice) and a signing key, neither loaded nor backed up."""
    folder = tmp_path / "demo"
    (folder / "keys").mkdir(parents=True)
    recipient = generate_custodian_identity(folder / "keys" / "alice.age-identity")
    generate_signing_key(folder / "keys" / "signing.key")
    return write_demo_inventory(folder, scale=0.05, backup_recipients=[recipient], signing_key=Path("keys/signing.key"))


@pytest.fixture
def inventory(tmp_path) -> Path:
    """The demo site migrated: assessed, backed up, decrypt-verified, loaded and validated."""
    path = _demo_inventory(tmp_path)
    through_inventory(
        path,
        "demo",
        "assess",
        "backup",
        "verify-identity",
        "load",
        "validate",
        identity=path.parent / "keys" / "alice.age-identity",
    )
    return path


def _run(capsys, inventory: Path, *args: str) -> tuple[int, dict | str]:
    capsys.readouterr()
    code = main(["-i", str(inventory), "--json", *args])
    out = capsys.readouterr().out
    try:
        return code, json.loads(out)
    except ValueError:
        return code, out


def test_reconcile_commands_until_the_site_drains(inventory, capsys):
    code, first = _run(capsys, inventory, "reconcile", "run", "demo", "--expect-drained")
    assert code == ExitCode.VERDICT_FAILED  # in flight: not drained, and --expect-drained says so
    code, second = _run(capsys, inventory, "reconcile", "run", "demo")
    assert code == ExitCode.OK and second["mode"] == "delta" and second["increment"] is None
    app = App(inventory)
    assert app.control_store.state("demo") == SiteState.RECONCILING

    assert main(["-i", str(inventory), "demo-advance", "demo", "--days", "4", "--drain"]) == ExitCode.OK
    code, drained = _run(capsys, inventory, "reconcile", "run", "demo", "--expect-drained")
    assert code == ExitCode.OK and drained["drained"] and drained["in_flight"] == 0
    assert all(c["holds"] for c in drained["criteria"])
    assert Path(drained["reports"]["html"]).is_file()
    assert app.control_store.state("demo") == SiteState.DRAINED
    assert len(drained["criteria"]) == 6
    runs = app.control_store.runs("demo", "reconcile")
    assert [r.figures["in_flight"] for r in runs if r.outcome == "succeeded"][-1] == 0

    code, chain = _run(capsys, inventory, "reconcile", "verify-chain", "demo")
    assert code == ExitCode.OK and chain["ok"] and [b["kind"] for b in chain["backups"]][0] == "full"
    scratch = inventory.parent / "scratch.sqlite"
    code, restored = _run(
        capsys,
        inventory,
        "reconcile",
        "restore-chain",
        "demo",
        "--identity",
        str(inventory.parent / "keys" / "alice.age-identity"),
        "--into-sqlite",
        str(scratch),
        "--files",
        str(inventory.parent / "restored-files"),
    )
    assert code == ExitCode.OK and restored["ok"]
    assert all(t["matches_live"] for t in restored["tables"].values()) and restored["files"]["matches_live"]
    app.close()


def test_reconcile_refuses_a_site_not_loaded_or_not_validated(tmp_path, capsys):
    path = _demo_inventory(tmp_path)
    assert main(["-i", str(path), "reconcile", "run", "demo"]) == ExitCode.REFUSED
    assert "the site is not loaded" in capsys.readouterr().err
    through_inventory(path, "demo", "assess", "backup", "verify", "load")
    assert main(["-i", str(path), "reconcile", "run", "demo"]) == ExitCode.REFUSED
    assert "the site's load has not been validated" in capsys.readouterr().err
    assert App(path).control_store.runs("demo", "reconcile") == []  # a refused stage did not run


def test_every_reconcile_command_documents_an_example():
    group = cli.commands["reconcile"]
    assert "Example:" in group.help
    for command in group.commands.values():
        assert "Example:" in command.help, command.name


@pytest.mark.prefect
@pytest.mark.slow
def test_reconcile_site_flow_publishes_its_verdict(inventory, prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.reconcile_site import reconcile_site

    results = reconcile_site(inventory=str(inventory))  # every site still draining: here, the one
    assert list(results) == ["demo"] and results["demo"].mode == "baseline"
    assert App(inventory).control_store.state("demo") == SiteState.RECONCILING
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(
                    any_=["demo-reconciliation", "demo-reconciliation-table", "demo-reconcile-in-flight"]
                )
            )
        )
    assert {a.key for a in artifacts} == {
        "demo-reconciliation",
        "demo-reconciliation-table",
        "demo-reconcile-in-flight",
    }
    markdown = next(a for a in artifacts if a.key == "demo-reconciliation").data
    assert "not drained" in markdown and "@" not in markdown.replace("demo", "")
