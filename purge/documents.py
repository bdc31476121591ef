"""Signed documents: the purge plan, each approval and the certificate of sanitization.

A document file holds canonical JSON (backups.manifest.canonical_json) of::

    {"body": {...}, "signatures": [{"role": "pipeline", "algorithm": "ed25519", "key_id": "...",
                                     "public_key": "...", "signature": "..."}, ...]}

Every signature is over the exact bytes ``canonical_json(body)``; the
document's hash (what approvals and the certificate cite) is the SHA-256 of
those bytes. Anything edited in the file, by one byte, either stops it being
JSON, changes the body (every signature fails) or breaks a signature.

Example::

    document = signed_document(body, [("pipeline", pipeline_key), ("author", operator_key)])
    write_document(folder / "plan.json", document)
    body, digest = checked_document(read_document(path), {"pipeline": pipeline_public_key}, what="plan")
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from backups.manifest import canonical_json
from backups.part_store import write_once
from ts24_migrate.core.errors import ConfigError, GateRefused, Ts24Error
from ts24_migrate.core.keys import SigningKey, key_id_of, verify_signature


def document_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


def signature_entry(role: str, key: SigningKey, body: Mapping[str, Any]) -> dict[str, str]:
    return {
        "role": role,
        "algorithm": "ed25519",
        "key_id": key.key_id,
        "public_key": key.public_key_b64,
        "signature": base64.b64encode(key.sign(canonical_json(body))).decode("ascii"),
    }


def signed_document(body: Mapping[str, Any], signers: Iterable[tuple[str, SigningKey]]) -> dict[str, Any]:
    return {"body": dict(body), "signatures": [signature_entry(role, key, body) for role, key in signers]}


def write_document(path: Path, document: Mapping[str, Any]) -> str:
    """Write the document once (never over an existing file); returns its hash."""
    raw = canonical_json(document)
    write_once(Path(path), lambda out: out.write(raw))
    return document_hash(document["body"])


def read_document(path: Path, *, what: str, refusal: type[Ts24Error] = GateRefused) -> dict[str, Any]:
    """The document in `path`; a file that is not one is refused (`refusal`), naming the file."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path} ({exc.strerror})") from None
    try:
        document = json.loads(raw)
    except ValueError:
        raise refusal(f"{what} {path} is not valid JSON: it was damaged or edited") from None
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("body"), dict)
        or not isinstance(document.get("signatures"), list)
    ):
        raise refusal(f"{what} {path} is not a signed ts24-migrate document")
    if raw != canonical_json(document):
        raise refusal(f"{what} {path} is not in its canonical form: it was edited after it was written")
    return document


def signature_problems(document: Mapping[str, Any], role: str, public_key_b64: str | None) -> list[str]:
    """Problems with the `role` signature; with `public_key_b64`, it must be by that key."""
    entries = [s for s in document["signatures"] if isinstance(s, dict) and s.get("role") == role]
    if len(entries) != 1:
        return [f"it holds {len(entries)} {role} signatures (expected 1)"]
    entry = entries[0]
    key = public_key_b64 if public_key_b64 is not None else entry.get("public_key")
    try:
        if public_key_b64 is not None and entry.get("key_id") != key_id_of(public_key_b64):
            return [
                f"its {role} signature is by key {entry.get('key_id')}, not the trusted key {key_id_of(public_key_b64)}"
            ]
        signature = base64.b64decode(str(entry.get("signature")), validate=True)
        ok = verify_signature(str(key), canonical_json(document["body"]), signature)
    except (ConfigError, ValueError):
        ok = False
    if not ok:
        return [f"its {role} signature does not verify: the document was changed after it was signed"]
    return []


def checked_document(
    document: Mapping[str, Any], trusted: Mapping[str, str | None], *, what: str, refusal: type[Ts24Error] = GateRefused
) -> tuple[dict[str, Any], str]:
    """(body, hash) once every role in `trusted` has a valid signature (by that key, when one is given)."""
    problems = [p for role, key in trusted.items() for p in signature_problems(document, role, key)]
    if problems:
        raise refusal(f"{what}: {problems[0]}")
    return dict(document["body"]), document_hash(document["body"])


def signer(document: Mapping[str, Any], role: str) -> dict[str, str] | None:
    return next((s for s in document["signatures"] if isinstance(s, dict) and s.get("role") == role), None)
