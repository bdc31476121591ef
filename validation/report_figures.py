"""What the validation report shows beyond the checks themselves, gathered once, at validation.

The report is rebuilt from the control store alone (an auditor's machine has
no legacy server, target or backup folder), so whatever it shows that does not
already sit in a stage's figures is read here, while validating, and recorded
with the validate run: examples of rejected rows, the rows loaded with
data-quality flags (counts and examples), dossiers by status, the backup's
signature document and its verification history, the audit-ledger head.

Example::

    reject_examples(target, site_id="hn-01")["HO_SO"]["DATE_INVALID"][0]
    # {'legacy_key': '1042', 'field': 'NGAY_NOP', 'value': '31/02/2024', 'message': '...'}
    reject_examples(target, site_id="hn-01")["NGUOI_LAO_DONG"]["BIRTH_DATE_INVALID"][0]
    # {'legacy_key': '01****4567', 'field': 'NGAY_SINH', 'value': '**/**/1985', ...}: personal data
    # masked before it is recorded (ts24_migrate/core/personal_data.py)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backups.manifest import MANIFEST_NAME, SIGNATURE_NAME, check_signature
from backups.manifest import manifest_fingerprint as sha256_of
from load import target_schema as ts
from load.bookkeeping import crosswalk, flags, rejects
from load.flag_records import flag_counts
from ts24_migrate.core.control_store import ControlStore
from ts24_migrate.core.personal_data import MASKED, Masking
from ts24_migrate.core.secrets import redact_url

if TYPE_CHECKING:
    from audit.ledger import Ledger

EXAMPLES_PER_REASON = 3
EXAMPLE_VALUE_CHARS = 120  # a value shows what is wrong; a whole note is not needed for that
VERIFY_STAGE = "verify-backup"


def _shortened(value: Any) -> str | None:
    if value is None:
        return None
    # Legacy text is free text: never let something that reads like a credential through.
    text = redact_url(str(value))
    return text if len(text) <= EXAMPLE_VALUE_CHARS else text[: EXAMPLE_VALUE_CHARS - 1] + "…"


def reject_examples(
    target: Engine, *, site_id: str, per_reason: int = EXAMPLES_PER_REASON, masking: Masking = MASKED
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """legacy table -> reason code -> the first `per_reason` rejects (by legacy key) of the site, personal
    data masked (`masking`)."""
    rank = (
        sa.func.row_number()
        .over(partition_by=(rejects.c.legacy_table, rejects.c.reason_code), order_by=rejects.c.legacy_key)
        .label("rank")
    )
    ranked = (
        sa.select(
            rejects.c.legacy_table,
            rejects.c.reason_code,
            rejects.c.legacy_key,
            rejects.c.field,
            rejects.c.original_value,
            rejects.c.message,
            rank,
        )
        .where(rejects.c.site_id == site_id)
        .subquery()
    )
    query = (
        sa.select(ranked)
        .where(ranked.c.rank <= per_reason)
        .order_by(ranked.c.legacy_table, ranked.c.reason_code, ranked.c.rank)
    )
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with target.connect() as conn:
        for row in conn.execute(query):
            # Masked from the whole value, then shortened: a cut value could escape its rule.
            example = masking.example(
                {"legacy_key": row.legacy_key, "field": row.field, "value": row.original_value, "message": row.message},
                table=row.legacy_table,
            )
            found.setdefault(row.legacy_table, {}).setdefault(row.reason_code, []).append(
                {
                    "legacy_key": example["legacy_key"],
                    "field": row.field,
                    "value": _shortened(example["value"]),
                    "message": _shortened(example["message"]),
                }
            )
    return found


def flag_summary(
    target: Engine, *, site_id: str, per_code: int = EXAMPLES_PER_REASON, masking: Masking = MASKED
) -> dict[str, dict[str, Any]]:
    """legacy table -> {"by_code": {code: rows flagged}, "examples": {code: the first `per_code` flagged
    values (by legacy key): legacy key, field, original value, value loaded}} of the site's loaded rows.

    The examples show no more than the value concerned, personal data masked (`masking`).
    """
    rank = (
        sa.func.row_number()
        .over(partition_by=(flags.c.legacy_table, flags.c.flag_code), order_by=(flags.c.legacy_key, flags.c.field))
        .label("rank")
    )
    ranked = (
        sa.select(
            flags.c.legacy_table,
            flags.c.flag_code,
            flags.c.legacy_key,
            flags.c.field,
            flags.c.original_value,
            flags.c.loaded_value,
            rank,
        )
        .where(flags.c.site_id == site_id)
        .subquery()
    )
    query = (
        sa.select(ranked)
        .where(ranked.c.rank <= per_code)
        .order_by(ranked.c.legacy_table, ranked.c.flag_code, ranked.c.rank)
    )
    found: dict[str, dict[str, Any]] = {}
    with target.connect() as conn:
        for table, codes in flag_counts(conn, site_id=site_id).items():
            found[table] = {"by_code": codes, "examples": {}}
        for row in conn.execute(query):
            example = masking.example(
                {
                    "legacy_key": row.legacy_key,
                    "field": row.field,
                    "original_value": row.original_value,
                    "loaded_value": row.loaded_value,
                },
                table=row.legacy_table,
            )
            found[row.legacy_table]["examples"].setdefault(row.flag_code, []).append(
                {
                    "legacy_key": example["legacy_key"],
                    "field": row.field,
                    "original_value": _shortened(example["original_value"]),
                    "loaded_value": _shortened(example["loaded_value"]),
                }
            )
    return found


def dossiers_by_status(target: Engine, *, site_id: str) -> dict[str, int]:
    """Status -> dossiers of the target that this site's load wrote (through its crosswalk)."""
    dossiers = ts.dossiers
    written = sa.and_(
        crosswalk.c.target_table == dossiers.name,
        crosswalk.c.target_key == sa.cast(dossiers.c.dossier_id, sa.String),
        crosswalk.c.site_id == site_id,
    )
    query = (
        sa.select(dossiers.c.status, sa.func.count())
        .select_from(dossiers.join(crosswalk, written))
        .group_by(dossiers.c.status)
    )
    with target.connect() as conn:
        return {str(status): int(n) for status, n in conn.execute(query)}


def backup_signature(
    backup_dir: Path | None, *, public_key_b64: str, manifest_fingerprint: str | None
) -> dict[str, Any]:
    """The manifest's signature document as on disk, checked now against the trusted key.

    `manifest_fingerprint` is what the backup run recorded: the signature must sign
    that very manifest.
    """
    if backup_dir is None:
        return {"valid": False, "problems": ["the backup run recorded no backup folder"]}
    backup_dir = Path(backup_dir)
    try:
        document = json.loads((backup_dir / SIGNATURE_NAME).read_bytes())
    except FileNotFoundError:
        return {"valid": False, "problems": [f"{backup_dir / SIGNATURE_NAME} is missing"]}
    except (OSError, ValueError):
        return {"valid": False, "problems": [f"{backup_dir / SIGNATURE_NAME} is not a signature document"]}
    if not isinstance(document, dict):
        return {"valid": False, "problems": [f"{backup_dir / SIGNATURE_NAME} is not a signature document"]}
    problems = list(check_signature(backup_dir, public_key_b64))
    try:
        on_disk = sha256_of((backup_dir / MANIFEST_NAME).read_bytes())
    except OSError:
        on_disk = None  # check_signature has said so
    if on_disk is not None and on_disk != manifest_fingerprint:
        problems.append(
            f"the manifest on disk (SHA-256 {on_disk}) is not the one the backup run recorded ({manifest_fingerprint})"
        )
    return {
        "algorithm": document.get("algorithm"),
        "key_id": document.get("key_id"),
        "manifest_sha256": document.get("manifest_sha256"),
        "signature": document.get("signature"),
        "file": str(backup_dir / SIGNATURE_NAME),
        "valid": not problems,
        "problems": problems,
    }


def backup_verification(store: ControlStore, site_id: str, backup_id: str | None) -> dict[str, Any]:
    """Is this backup verified? Its verify-backup runs, read from the control store.

    Verified: a verify-backup run that decrypted every part (a custodian's identity)
    succeeded, and no verification of the same backup failed after it. A check
    without a key (signature and ciphertext hashes only) is reported, not counted.
    """
    runs = [
        run
        for run in store.runs(site_id, VERIFY_STAGE)
        if run.outcome in ("succeeded", "failed") and run.figures.get("backup_id") == backup_id
    ]
    if not runs:
        return {
            "verified": False,
            "state": "never verified",
            "run_id": None,
            "summary": f"backup {backup_id} has no verification run",
        }
    decrypted = [
        i for i, run in enumerate(runs) if run.outcome == "succeeded" and run.figures.get("mode") == "decrypted"
    ]
    last_failed = max((i for i, run in enumerate(runs) if run.outcome == "failed"), default=-1)
    chosen = runs[decrypted[-1]] if decrypted and decrypted[-1] > last_failed else runs[-1]
    if chosen.outcome == "failed":
        state, verified = "failed", False
    elif chosen.figures.get("mode") == "decrypted":
        state, verified = "verified", True
    else:
        state, verified = "checked without a key", False
    figures = chosen.figures
    entry = {
        "verified": verified,
        "state": state,
        "run_id": chosen.run_id,
        "outcome": chosen.outcome,
        "finished_at": chosen.finished_at,
        "mode": figures.get("mode"),
        "parts_checked": figures.get("parts_checked"),
        "rows_checked": figures.get("rows_checked"),
        "files_checked": figures.get("files_checked"),
        "problems": figures.get("problems"),
        "error": chosen.error,
    }
    entry["summary"] = {
        "verified": f"backup {backup_id} decrypted and recounted by run {chosen.run_id}",
        "failed": f"the latest verification of backup {backup_id} failed: {chosen.error}",
        "checked without a key": f"backup {backup_id} was checked without a custodian key only "
        "(signature and ciphertext hashes): its contents were never decrypted",
    }[state]
    return entry


def ledger_head(ledger: Ledger) -> dict[str, Any]:
    """seq and hash of the ledger's latest event, and where it is."""
    event = ledger.head()
    return {"seq": event.seq if event else None, "hash": event.hash if event else None, "path": str(ledger.path)}
