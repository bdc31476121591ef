"""The purge gate matrix: each gate violated alone refuses (exit code 4), names the gate and what to do,
and leaves every legacy object and file byte for byte as it was."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path

import pytest
from test_purge_support import SITE, copy_site, run_cli, template

from purge.approvals import approval_document
from purge.documents import write_document
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.core.signing import load_signing_key
from ts24_migrate.demo.site_objects import _VIEW_SQL, VIEW

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path_factory, tmp_path):
    return copy_site(template(tmp_path_factory), tmp_path / "site")


def _refused(site, capsys, *args: str, gate: str, alone: bool = True) -> str:
    before = site.snapshot()
    code, _out, err = run_cli(site.inventory, *args, capsys=capsys)
    assert code == ExitCode.REFUSED, err
    assert f"gate {gate} failed" in err and "nothing was destroyed" in err and "What to do:" in err, err
    if alone:
        assert "also failing" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert site.snapshot() == before  # every legacy object and file byte-identical
    assert site.store().state(SITE) == SiteState.FINAL_BACKUP_VERIFIED
    return err


def _planned(site, capsys) -> tuple[str, str]:
    plan = site.plan(capsys)
    return plan["plan"], site.approve(plan["plan"], capsys=capsys)


def _execute(plan: str, *approvals: str) -> list[str]:
    return ["purge", "execute", SITE, "--plan", plan, *[a for approval in approvals for a in ("--approval", approval)]]


def _write_legacy(site, statement: str) -> None:
    """TS24 (or an administrator) writing despite the write stop (root ignores file modes)."""
    with sqlite3.connect(site.legacy) as conn:
        conn.executescript(statement)


def test_a_legacy_row_changed_after_the_final_backup_is_refused(site, capsys):
    plan, approval = _planned(site, capsys)
    _write_legacy(site, "UPDATE DM_DONVI SET TEN_DV = TEN_DV || ' ' WHERE MA_DV = (SELECT MIN(MA_DV) FROM DM_DONVI)")
    err = _refused(site, capsys, *_execute(plan, approval), gate="live_equals_chain", alone=False)
    assert "table DM_DONVI changed" in err and "plan_current" in err
    _refused(site, capsys, "purge", "plan", SITE, "--key", str(site.key("operator")), gate="live_equals_chain")


def test_a_view_definition_changed_after_the_final_backup_is_refused(site, capsys):
    plan, approval = _planned(site, capsys)
    _write_legacy(site, f"DROP VIEW {VIEW}; " + _VIEW_SQL.replace("(0, 1, 2, 3)", "(0, 1, 2)"))
    err = _refused(site, capsys, *_execute(plan, approval), gate="live_equals_chain", alone=False)
    assert f"object view:{VIEW} changed" in err
    _refused(site, capsys, "purge", "plan", SITE, "--key", str(site.key("operator")), gate="live_equals_chain")


def test_an_attachment_changed_after_the_final_backup_is_refused(site, capsys):
    plan, approval = _planned(site, capsys)
    victim = next(p for p in sorted(site.files.rglob("*")) if p.is_file() and not p.is_symlink())
    victim.write_bytes(victim.read_bytes() + b" ")
    err = _refused(site, capsys, *_execute(plan, approval), gate="live_equals_chain", alone=False)
    assert "@attachments changed" in err
    _refused(site, capsys, "purge", "plan", SITE, "--key", str(site.key("operator")), gate="live_equals_chain")


def test_a_site_whose_latest_reconciliation_is_not_drained_is_refused(site, capsys):
    # A reconciliation that only read the delta cannot vouch that every row equals the chain.
    code, result, err = run_cli(site.inventory, "reconcile", "run", SITE, "--no-sweep", capsys=capsys)
    assert code == ExitCode.OK and not result["drained"] and result["increment"] is None, err
    _refused(site, capsys, "purge", "plan", SITE, "--key", str(site.key("operator")), gate="drained")


def test_writes_not_stopped_are_refused(site, capsys):
    site.legacy.chmod(0o644)
    err = _refused(site, capsys, "purge", "plan", SITE, "--key", str(site.key("operator")), gate="writes_stopped")
    assert "purge prepare" in err


def test_another_server_than_the_assessed_one_is_refused(tmp_path_factory, tmp_path, capsys):
    # The copy is another SQLite file (another inode) and is not re-assessed: it is not the assessed server.
    site = copy_site(template(tmp_path_factory), tmp_path / "site", reassess=False)
    _refused(
        site, capsys, "purge", "plan", SITE, "--key", str(site.key("operator")), gate="server_identity", alone=False
    )


def test_a_tampered_ledger_is_refused(site, capsys):
    lines = site.ledger.read_bytes().split(b"\n")
    index = next(i for i, line in enumerate(lines) if b'"rows":' in line)
    lines[index] = lines[index].replace(b'"rows":', b'"rows":1', 1)  # one figure edited, JSON still valid
    site.ledger.write_bytes(b"\n".join(lines))
    _refused(site, capsys, "purge", "plan", SITE, "--key", str(site.key("operator")), gate="ledger_verifies")


@pytest.mark.timeout(900)
def test_a_failed_validation_is_refused(site, capsys):
    import sqlalchemy as sa

    from load.target_schema import dossiers
    from ts24_migrate.core.config import load_inventory
    from ts24_migrate.core.db import store_engine

    target = store_engine(load_inventory(site.inventory).target_url())
    with target.begin() as conn:  # someone edits a migrated dossier on the new system
        conn.execute(
            dossiers.update()
            .where(dossiers.c.dossier_id == sa.select(sa.func.min(dossiers.c.dossier_id)).scalar_subquery())
            .values(status="processing")
        )
    target.dispose()
    code, _result, err = run_cli(site.inventory, "validate", SITE, capsys=capsys)
    assert code == ExitCode.VERDICT_FAILED, err
    _refused(site, capsys, "purge", "plan", SITE, "--key", str(site.key("operator")), gate="validation_passed")


# -- approvals -----------------------------------------------------------------------------------------------


def test_an_approval_of_another_plan_is_refused(site, capsys):
    first, approval = _planned(site, capsys)
    second = site.plan(capsys)["plan"]
    assert second != first
    err = _refused(site, capsys, *_execute(second, approval), gate="approvals")
    assert "approves another plan" in err


def test_an_expired_approval_is_refused(site, capsys):
    plan = site.plan(capsys)["plan"]
    body = json.loads(Path(plan).read_text(encoding="utf-8"))["body"]
    from ts24_migrate.core.signing import document_hash

    two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    document = approval_document(
        body,
        document_hash(body),
        key=load_signing_key(site.key("approver-b")),
        name="Tran Thi B",
        role=None,
        valid_for=dt.timedelta(hours=1),
        now=two_hours_ago,
    )
    expired = Path(plan).parent / "approval-expired.json"
    write_document(expired, document)
    err = _refused(site, capsys, *_execute(plan, str(expired)), gate="approvals")
    assert "expired at" in err


def test_the_plans_author_cannot_approve_it(site, capsys):
    plan = site.plan(capsys)["plan"]
    before = site.snapshot()
    code, _out, err = run_cli(
        site.inventory, "purge", "approve", plan, "--key", str(site.key("operator")), capsys=capsys
    )
    assert code == ExitCode.REFUSED and "its author cannot approve it" in err
    assert site.snapshot() == before
    # Signed by hand all the same: execution refuses it too.
    body = json.loads(Path(plan).read_text(encoding="utf-8"))["body"]
    from ts24_migrate.core.signing import document_hash

    document = approval_document(
        body,
        document_hash(body),
        key=load_signing_key(site.key("operator")),
        name="Nguyen Van A",
        role=None,
        valid_for=dt.timedelta(hours=1),
    )
    forged = Path(plan).parent / "approval-by-author.json"
    write_document(forged, document)
    err = _refused(site, capsys, *_execute(plan, str(forged)), gate="approvals")
    assert "the plan's own author" in err


def test_a_plan_the_site_no_longer_matches_is_refused_with_its_approval(site, capsys):
    plan, approval = _planned(site, capsys)
    # An empty folder appears: no data changed (live = chain still), but it is not in the approved plan.
    (site.files / "new-folder").mkdir()
    err = _refused(site, capsys, *_execute(plan, approval), gate="plan_current")
    assert "attachment new-folder is not in the plan" in err and "purge plan" in err


def test_an_unlisted_key_cannot_approve(site, capsys, tmp_path):
    from ts24_migrate.core.signing import generate_signing_key

    plan = site.plan(capsys)["plan"]
    generate_signing_key(tmp_path / "stranger.key")
    code, _out, err = run_cli(
        site.inventory, "purge", "approve", plan, "--key", str(tmp_path / "stranger.key"), capsys=capsys
    )
    assert code == ExitCode.REFUSED and "not listed under approvers" in err
    assert not any(p.name.startswith("approval-") for p in Path(plan).parent.iterdir())
    assert os.path.exists(plan)
