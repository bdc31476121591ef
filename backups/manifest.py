"""The backup manifest: what a backup holds, signed, and its fingerprint.

`manifest.json` lists every part (table, rows, key range, schema, part
fingerprint, plaintext and ciphertext SHA-256 and sizes), the attachment
parts, and the views, triggers, procedures and sequences (name, fingerprint;
their definitions are in the encrypted part under parts/@objects); `manifest.json.sig` holds an Ed25519 signature over the exact bytes of
manifest.json. The manifest's id, `manifest_fingerprint`, is the SHA-256 of
those bytes: reports, the ledger and the purge certificate cite it.

The bytes are canonical JSON (sorted keys, no spaces, ASCII only) so that a
manifest rebuilt from the same content has the same fingerprint.

Format `ts24-backup/1`, designed for incremental backups too: `kind` is
"full" or "incremental", `parent` names the backup (id and manifest
fingerprint) that an incremental one extends, and each table says its `mode`
("full", or "delta" with `since`: the parent's watermark) — a full backup
has kind "full", parent null and every table in mode "full".

Example::

    manifest = read_manifest(backup_dir)           # raises VerificationError if absent/unreadable
    manifest.fingerprint, manifest.backup_id, manifest.tables["HO_SO"]["rows"]
    check_signature(backup_dir, public_key_b64)    # [] or the problems found
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.signing import canonical_json

FORMAT = "ts24-backup/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.sig"
PARTS_DIR = "parts"
FILES_DIR = "@files"  # under parts/: attachment parts; '@' never appears in a table's folder name
AGE_FORMAT = "age-encryption.org/v1"


def manifest_fingerprint(manifest_bytes: bytes) -> str:
    return hashlib.sha256(manifest_bytes).hexdigest()


def signature_document(manifest_bytes: bytes, signing_key: Any) -> bytes:
    """The contents of manifest.json.sig for `manifest_bytes`."""
    return canonical_json(
        {
            "algorithm": "ed25519",
            "key_id": signing_key.key_id,
            "manifest_sha256": manifest_fingerprint(manifest_bytes),
            "signature": base64.b64encode(signing_key.sign(manifest_bytes)).decode("ascii"),
        }
    )


@dataclass(frozen=True)
class BackupManifest:
    """A manifest as read from disk: the parsed content plus the exact bytes it was read from."""

    path: Path  # the backup folder
    data: dict[str, Any]
    raw: bytes

    @property
    def fingerprint(self) -> str:
        return manifest_fingerprint(self.raw)

    @property
    def backup_id(self) -> str:
        backup_id: str = self.data["backup_id"]
        return backup_id

    @property
    def site_id(self) -> str:
        site_id: str = self.data["site_id"]
        return site_id

    @property
    def tables(self) -> dict[str, dict[str, Any]]:
        tables: dict[str, dict[str, Any]] = self.data["tables"]
        return tables

    @property
    def attachments(self) -> dict[str, Any] | None:
        return self.data.get("attachments")

    @property
    def objects(self) -> dict[str, Any] | None:
        """Views, triggers, procedures, sequences: {"items": [listing...], "note", "parts"}; None in a
        manifest that did not record them (an incremental backup, or one made before they were)."""
        return self.data.get("objects")

    def object_fingerprints(self) -> dict[str, str | None]:
        """{object key: fingerprint}: what extract.objects.live_object_fingerprints returns."""
        from extract.objects import listing_key

        return {listing_key(item): item["fingerprint"] for item in (self.objects or {}).get("items", [])}

    @property
    def recipients(self) -> list[str]:
        return list(self.data["encryption"]["recipients"])

    def fingerprints(self) -> dict[str, str]:
        """{table: fingerprint, "@attachments": fingerprint}: what live_fingerprints returns."""
        from extract.attachments import ATTACHMENTS_KEY

        result = {name: table["fingerprint"] for name, table in self.tables.items()}
        if self.attachments is not None:
            result[ATTACHMENTS_KEY] = self.attachments["fingerprint"]
        return result

    def summary(self) -> dict[str, Any]:
        totals = self.data.get("totals", {})
        return {
            "backup_id": self.backup_id,
            "site_id": self.site_id,
            "kind": self.data.get("kind"),
            "created_at": self.data.get("created_at"),
            "completed_at": self.data.get("completed_at"),
            "manifest_fingerprint": self.fingerprint,
            "tables": totals.get("tables"),
            "rows": totals.get("rows"),
            "parts": totals.get("parts"),
            "ciphertext_bytes": totals.get("ciphertext_bytes"),
            "attachment_files": (self.attachments or {}).get("files"),
            "objects": len((self.objects or {}).get("items") or []),
        }


def read_manifest(backup_dir: Path) -> BackupManifest:
    path = Path(backup_dir) / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise VerificationError(
            f"{path}: no manifest (the backup is incomplete or this is not a backup folder)"
        ) from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise VerificationError(f"{path}: the manifest is not valid JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise VerificationError(f"{path}: unknown manifest format {found!r} (expected {FORMAT})")
    return BackupManifest(Path(backup_dir), data, raw)


def check_signature(backup_dir: Path, public_key_b64: str) -> list[str]:
    """Problems with manifest.json.sig against `public_key_b64` (empty when the signature holds)."""
    from ts24_migrate.core.signing import verify_signature

    backup_dir = Path(backup_dir)
    try:
        raw = (backup_dir / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        return [f"{MANIFEST_NAME} is missing"]
    try:
        document = json.loads((backup_dir / SIGNATURE_NAME).read_bytes())
        signature = base64.b64decode(document["signature"], validate=True)
    except FileNotFoundError:
        return [f"{SIGNATURE_NAME} is missing: the manifest is not signed"]
    except (ValueError, KeyError, TypeError):
        return [f"{SIGNATURE_NAME} is not a valid signature document"]
    if not verify_signature(public_key_b64, raw, signature):
        return [
            f"the manifest signature does not verify with the given public key (key id of the "
            f"signature: {document.get('key_id')}): the manifest was changed after signing, or it "
            f"was signed by another key"
        ]
    return []
