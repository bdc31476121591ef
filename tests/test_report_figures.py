"""What validation gathers for the report beyond the checks: verification state, signature, examples.

Plus the two other ways a verdict fails, end to end: a legacy table that
changed between backup and load (accounting) and a backup checked only
without a custodian key (not verified).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_report_support import SITE
from test_stages_support import through

from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.core.control_store import ControlStore, SiteState
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.legacy import schema as ls
from ts24_migrate.core.signing import generate_signing_key, load_public_key, public_key_path
from ts24_migrate.runs.app import App
from ts24_migrate.runs.backup import backup_step, verify_step
from ts24_migrate.runs.load import load_step
from ts24_migrate.runs.validate import ValidationFailed, validate_step
from validation.report_figures import backup_signature, backup_verification, reject_examples


@pytest.fixture
def store(sqlite_url) -> ControlStore:
    return ControlStore(sa.create_engine(sqlite_url("control")))


def _verify_run(store: ControlStore, backup_id: str, outcome: str, mode: str = "decrypted") -> str:
    run = store.start_run(SITE, "verify-backup")
    store.finish_run(
        run,
        outcome,
        {"backup_id": backup_id, "mode": mode, "rows_checked": 10, "parts_checked": 2},
        error="VerificationError: part 1 damaged" if outcome == "failed" else None,
    )
    return run


def test_verification_state_follows_the_backups_own_runs(store):
    assert backup_verification(store, SITE, "B1")["state"] == "never verified"
    _verify_run(store, "B1", "succeeded", mode="signature+ciphertext")
    state = backup_verification(store, SITE, "B1")
    assert (state["state"], state["verified"]) == ("checked without a key", False)

    decrypted = _verify_run(store, "B1", "succeeded")
    _verify_run(store, "B1", "succeeded", mode="signature+ciphertext")  # a later quick check keeps it verified
    state = backup_verification(store, SITE, "B1")
    assert (state["state"], state["verified"], state["run_id"]) == ("verified", True, decrypted)
    assert backup_verification(store, SITE, "B2")["state"] == "never verified"  # another backup's runs do not count

    failed = _verify_run(store, "B1", "failed")
    state = backup_verification(store, SITE, "B1")
    assert (state["state"], state["verified"], state["run_id"]) == ("failed", False, failed)
    assert "part 1 damaged" in state["summary"]

    again = _verify_run(store, "B1", "succeeded")
    assert backup_verification(store, SITE, "B1")["run_id"] == again
    assert backup_verification(store, SITE, "B1")["verified"]


@pytest.fixture
def backed_up(tmp_path):
    """A demo site assessed, backed up and checked without a key (the custodian's key kept aside)."""
    identity = tmp_path / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(tmp_path / "keys" / "signing.key")
    inventory = write_demo_inventory(
        tmp_path / "site", scale=0.05, backup_recipients=[recipient], signing_key=tmp_path / "keys" / "signing.key"
    )
    app = App(inventory)
    through(app, SITE, "assess")
    result = backup_step(app, SITE)
    verify_step(app, SITE)  # signature and ciphertext only: what a load needs first
    yield app, result, identity, tmp_path
    app.close()


def test_the_signature_is_read_back_and_checked_against_the_trusted_key(backed_up, tmp_path):
    app, result, _, keys = backed_up
    public_key = load_public_key(public_key_path(keys / "keys" / "signing.key"))
    backup_dir = Path(result.backup_dir)
    good = backup_signature(backup_dir, public_key_b64=public_key, manifest_fingerprint=result.manifest_fingerprint)
    assert good["valid"] and good["problems"] == [] and good["algorithm"] == "ed25519"
    assert good["signature"] == json.loads((backup_dir / "manifest.json.sig").read_text())["signature"]

    other = backup_signature(backup_dir, public_key_b64=public_key, manifest_fingerprint="0" * 64)
    assert not other["valid"] and "is not the one the backup run recorded" in other["problems"][0]

    stranger = generate_signing_key(tmp_path / "stranger" / "signing.key")
    forged = backup_signature(
        backup_dir, public_key_b64=load_public_key(stranger), manifest_fingerprint=result.manifest_fingerprint
    )
    assert not forged["valid"] and "does not verify" in forged["problems"][0]

    copy = tmp_path / "copy"
    shutil.copytree(backup_dir, copy)
    (copy / "manifest.json.sig").unlink()
    missing = backup_signature(copy, public_key_b64=public_key, manifest_fingerprint=result.manifest_fingerprint)
    assert not missing["valid"] and "is missing" in missing["problems"][0]
    assert not backup_signature(None, public_key_b64=public_key, manifest_fingerprint=None)["valid"]


def test_reject_examples_are_the_first_rejects_per_reason_with_credentials_redacted(backed_up):
    from load.bookkeeping import rejects
    from ts24_migrate.core.personal_data import field_kind, mask_legacy_key

    app, *_ = backed_up
    load_step(app, SITE)
    target = app.target_engine()
    examples = reject_examples(target, site_id=SITE, per_reason=2)
    with target.connect() as conn:
        keys: dict[tuple[str, str], list[str]] = {}
        fields: dict[tuple[str, str], str | None] = {}
        for table, reason, key, field in conn.execute(
            sa.select(rejects.c.legacy_table, rejects.c.reason_code, rejects.c.legacy_key, rejects.c.field).where(
                rejects.c.site_id == SITE
            )
        ):
            keys.setdefault((table, reason), []).append(key)
            fields[table, key] = field
        counts = {k: len(v) for k, v in keys.items()}
        raw_first = {k: sorted(v)[:2] for k, v in keys.items()}
        first = {k: [mask_legacy_key(k[0], key) for key in v] for k, v in raw_first.items()}  # persons' keys masked
        # A legacy note that happens to hold a URL with a password never reaches the report (a field that
        # is not personal: a personal one is masked whole).
        table, reason = next(k for k in counts if field_kind(fields[k[0], raw_first[k][0]]) is None)
        key = raw_first[table, reason][0]
        conn.execute(
            rejects.update()
            .where(rejects.c.site_id == SITE, rejects.c.legacy_table == table, rejects.c.legacy_key == key)
            .values(original_value="see mssql://sa:Hunter2pw@10.0.0.5/ts24")
        )
        conn.commit()
    assert {(t, r): len(e) for t, by_reason in examples.items() for r, e in by_reason.items()} == {
        k: min(n, 2) for k, n in counts.items()
    }
    assert {(t, r): [e["legacy_key"] for e in ex] for t, by in examples.items() for r, ex in by.items()} == first
    shown = json.dumps(reject_examples(target, site_id=SITE))
    assert "Hunter2pw" not in shown and "mssql://sa:***@10.0.0.5/ts24" in shown


@pytest.mark.slow
def test_a_changed_legacy_table_and_an_unverified_backup_each_fail_the_verdict(backed_up):
    app, result, identity, _ = backed_up
    verify_step(app, SITE)  # signature and ciphertext only: no custodian key
    # The legacy database gains a history row after the backup, before the load.
    legacy_url = (app.inventory.base_dir / "secrets" / f"{SITE}.legacy.url").read_text().strip()
    writable = sa.create_engine(legacy_url)
    with writable.begin() as conn:
        row = dict(
            conn.execute(sa.select(ls.HO_SO_LICH_SU).order_by(ls.HO_SO_LICH_SU.c.ID.desc()).limit(1)).mappings().one()
        )
        conn.execute(ls.HO_SO_LICH_SU.insert().values({**row, "ID": row["ID"] + 1}))
    writable.dispose()
    load_step(app, SITE)

    with pytest.raises(ValidationFailed) as failure:
        validate_step(app, SITE)
    accounting, backup = failure.value.result.reasons
    assert accounting.startswith("accounting of HO_SO_LICH_SU: backed up ")
    backup_rows = app.control_store.table_figures(result.run_id)["HO_SO_LICH_SU"]["rows"]
    assert f"backed up {backup_rows} rows of {backup_rows + 1} read from the source" in accounting
    assert backup.startswith("backup not verified: ") and "checked without a custodian key" in backup
    report = json.loads(Path(failure.value.result.reports.json_).read_text(encoding="utf-8"))
    (row,) = [r for r in report["accounting"]["tables"] if r["table"] == "HO_SO_LICH_SU"]
    assert (row["ok"], row["source"], row["backed_up"]) == (False, backup_rows + 1, backup_rows)
    assert report["parity"]["exact"] and report["backup"]["verification"]["state"] == "checked without a key"
    assert app.control_store.state(SITE) == SiteState.LOADED
