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

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backups.part_store import write_once
from ts24_migrate.core.errors import ConfigError, GateRefused, Ts24Error
from ts24_migrate.core.signing import canonical_json, document_hash


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


def signer(document: Mapping[str, Any], role: str) -> dict[str, str] | None:
    return next((s for s in document["signatures"] if isinstance(s, dict) and s.get("role") == role), None)
