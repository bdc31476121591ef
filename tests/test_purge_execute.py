"""A purge from plan to certificate on a SQLite site: exactly the scope is destroyed, nothing outside it is
touched, the certificate verifies offline, and the backup chain still restores what was purged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_purge_support import OUTSIDE_SECRET, SITE, copy_site, run_cli, template

from backups.chain import load_chain, restore_chain
from reconcile.state import ReconcileState
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import load_public_key
from ts24_migrate.demo.site_objects import TRIGGER, VIEW

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path_factory, tmp_path):
    return copy_site(template(tmp_path_factory), tmp_path / "site")


def test_plan_changes_nothing_and_lists_exactly_the_scope(site, capsys):
    before = site.snapshot()
    plan = site.plan(capsys)
    assert site.snapshot() == before  # a dry run
    document = json.loads(Path(plan["plan"]).read_text(encoding="utf-8"))
    body = document["body"]
    assert {t["name"] for t in body["tables"]} >= {"HO_SO", "HO_SO_TEP", "HT_NHAT_KY", "DM_DONVI"}
    assert {o["key"] for o in body["objects"]} == {f"view:{VIEW}", f"trigger:{TRIGGER}"}
    assert body["backup_chain"]["objects_compared_with"] == "the backup chain's record of object definitions"
    entries = {e["path"]: e for e in body["attachments"]["entries"]}
    assert entries["link-to-outside-file"]["kind"] == "link"
    assert entries["link-to-outside-file"]["link_target"] == "../outside/secret.txt"
    assert entries["link-to-outside-folder"]["kind"] == "link"
    assert not any(path.startswith("link-to-outside-folder/") for path in entries)  # never followed
    assert [f["path"] for f in body["database_files"]] == [str(site.legacy.resolve())]
    assert all(g["holds"] for g in body["gates"]) and len(body["gates"]) == 9
    # The residue sample is keyed hashes only: no sampled value appears in the plan.
    text = Path(plan["plan"]).read_text(encoding="utf-8")
    import sqlite3

    with sqlite3.connect(f"file:{site.legacy}?mode=ro", uri=True) as conn:
        insured = [r[0] for r in conn.execute("SELECT MA_SO_BHXH FROM NGUOI_LAO_DONG LIMIT 20")]
    assert insured and not any(value in text for value in insured)
    assert Path(plan["html"]).read_text(encoding="utf-8").count("<tr>") > len(entries)
    # The copies of the site's data outside the server, and why (purge.remaining_copies), named from the inventory.
    copies = {c["kind"]: c for c in body["remaining_copies"]}
    assert {"backup chain", "new system", "control store", "audit ledger", "report"} <= set(copies)
    assert copies["backup chain"]["disposition"] == "kept by design" and "path" not in copies["backup chain"]
    assert "Copies outside the server" in Path(plan["html"]).read_text(encoding="utf-8")


def test_execute_destroys_exactly_the_plan_and_the_certificate_verifies_offline(site, capsys, tmp_path):
    plan = site.plan(capsys)
    approval = site.approve(plan["plan"], capsys=capsys)
    before = site.snapshot()
    target_file = site.folder / "new-system" / "target.sqlite"
    code, result, err = run_cli(
        site.inventory, "purge", "execute", SITE, "--plan", plan["plan"], "--approval", approval, capsys=capsys
    )
    assert code == ExitCode.OK, err
    after = site.snapshot()

    # In scope: the legacy database and everything under the attachment folder, links removed as links.
    assert not site.legacy.exists() and site.files.is_dir() and list(site.files.iterdir()) == []
    destroyed = {p for p in before if p == "legacy/demo.sqlite" or p.startswith(f"attachments/{SITE}/")}
    assert set(before) - set(after) == destroyed
    # Outside it: byte for byte as before (the links' targets, backups, the target database, keys, secrets).
    assert {p: v for p, v in before.items() if p not in destroyed} == after
    assert (site.folder / "attachments" / "outside" / "secret.txt").read_bytes() == OUTSIDE_SECRET
    assert target_file.exists()
    figures = result["figures"]
    files = [p for p, v in before.items() if p.startswith(f"attachments/{SITE}/") and v[0] == "file"]
    assert figures["files_overwritten"] == len(files) and figures["links_removed"] == 2
    assert figures["bytes_overwritten"] == plan["totals"]["file_bytes"] > 0
    assert result["state"] == "CERTIFIED"
    assert [t[1] for t in site.store().transitions(SITE)][-3:] == ["PURGE_APPROVED", "PURGED", "CERTIFIED"]

    # The certificate verifies offline with public keys only, against backups, ledger and plan.
    code, check, err = run_cli(
        site.inventory,
        "certificate",
        "verify",
        result["certificate"],
        "--public-key",
        str(site.public_key),
        "--backups",
        str(site.folder / "backups"),
        "--ledger",
        str(site.ledger),
        "--plan",
        plan["plan"],
        capsys=capsys,
    )
    assert code == ExitCode.OK and check["ok"], err
    assert len(check["checked"]) == 5
    body = json.loads(Path(result["certificate"]).read_text(encoding="utf-8"))["body"]
    assert body["sanitization"]["method_type"] == "Clear (logical)"
    assert "LOGICAL" in body["statement"] and "media" in body["statement"]
    assert body["performed_by"]["name"] == "Nguyen Van A" and body["approvals"]["given"][0]["approver"] == "Tran Thi B"
    assert body["media"]["database"] == str(site.legacy.resolve()) and body["residues_for_media_sanitization"]
    assert body["verification"]["passed"] and body["verification"]["residue_scan"]["values_found"] == 0
    copies = {c["kind"]: c for c in body["remaining_copies"]}  # what remains besides the server, and why
    assert copies["backup chain"]["exists"] and copies["new system"]["disposition"] == "kept by design"

    # Re-running the command finds the purge done and says so.
    code, again, _ = run_cli(site.inventory, "purge", "execute", SITE, "--plan", plan["plan"], capsys=capsys)
    assert code == ExitCode.OK and again["resumed"] and again["certificate_sha256"] == result["certificate_sha256"]

    # The chain restores what was purged: the pre-purge fingerprints the certificate recorded.
    store = site.store()
    manifests = load_chain(site.folder / "backups", SITE, ReconcileState(store.engine).chain(SITE))
    scratch = store_engine(Secret(f"sqlite:///{tmp_path / 'restored.sqlite'}"))
    try:
        report = restore_chain(
            manifests,
            site.identity,
            scratch,
            tmp_path / "restored-files",
            public_key_b64=load_public_key(site.public_key),
        )
    finally:
        scratch.dispose()
    assert report.ok, report.problems
    assert {n: t["fingerprint"] for n, t in report.tables.items()} == body["pre_purge_fingerprints"]["tables"]
    assert report.files["fingerprint"] == body["pre_purge_fingerprints"]["attachments"]
    assert store.state(SITE) == SiteState.CERTIFIED


def test_a_hard_link_outside_the_folder_is_unlinked_but_never_overwritten(site, capsys, tmp_path):
    # An administrator's hard link to an attachment, outside the folder: the same inode, two names.
    victim = next(p for p in sorted(site.files.rglob("*")) if p.is_file() and not p.is_symlink())
    outside = site.folder / "attachments" / "outside" / "hard-linked-copy"
    os.link(victim, outside)
    content = outside.read_bytes()
    plan = site.plan(capsys)
    entry = next(
        e
        for e in json.loads(Path(plan["plan"]).read_text())["body"]["attachments"]["entries"]
        if e["path"] == victim.relative_to(site.files).as_posix()
    )
    assert entry["outside_links"] and "unlink only" in entry["method"]
    approval = site.approve(plan["plan"], capsys=capsys)
    code, result, err = run_cli(
        site.inventory, "purge", "execute", SITE, "--plan", plan["plan"], "--approval", approval, capsys=capsys
    )
    assert code == ExitCode.OK, err
    assert not victim.exists() and outside.read_bytes() == content
    assert result["figures"]["files_unlinked_only"] == 1
