"""Addenda to a certificate of sanitization: the media-level sanitization, then the server's handover.

The certificate attests a logical sanitization only. The disks are sanitized
afterwards with a tool made for it (NIST SP 800-88 Purge or Destroy); the
media attestation records that step (device serials, method, tool, who, when,
and the SHA-256 of the tool's own report). The handover records to whom and
when the server went back to its owner, and is refused before the media were
attested. Each addendum is a signed document (purge/documents.py) bound to the
certificate's hash, signed by the pipeline key.

Example::

    body = media_attestation_body(certificate_body, certificate_hash, devices=["S4EVNF0M"], method=..., ...)
    problems = addendum_problems(document, certificate_hash, public_key)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ts24_migrate.core.errors import Ts24Error
from ts24_migrate.core.signing import checked_document

MEDIA_FORMAT = "ts24-media-attestation/1"
HANDOVER_FORMAT = "ts24-handover/1"
MEDIA_NAME = "media-attestation.json"
HANDOVER_NAME = "handover.json"


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            sha.update(block)
    return sha.hexdigest()


def media_attestation_body(
    certificate: Mapping[str, Any],
    certificate_hash: str,
    *,
    devices: Sequence[str],
    method: str,
    tool: str,
    report_sha256: str,
    report_name: str,
    performed_by: Mapping[str, Any],
    date: str,
) -> dict[str, Any]:
    return {
        "format": MEDIA_FORMAT,
        "site": certificate["site"],
        "certificate_sha256": certificate_hash,
        "server": certificate["media"]["server"],
        "devices": list(devices),
        "method": method,
        "tool": tool,
        "tool_report": {"name": report_name, "sha256": report_sha256},
        "performed_by": dict(performed_by),
        "date": date,
        "statement": "The storage media of this server were sanitized at media level with the method and "
        "tool named here; the tool's report, whose SHA-256 is given, is kept by the agency.",
    }


def handover_body(
    certificate: Mapping[str, Any],
    certificate_hash: str,
    media_hash: str,
    *,
    receiver: Mapping[str, Any],
    handed_over_by: Mapping[str, Any],
    date: str,
) -> dict[str, Any]:
    return {
        "format": HANDOVER_FORMAT,
        "site": certificate["site"],
        "certificate_sha256": certificate_hash,
        "media_attestation_sha256": media_hash,
        "server": certificate["media"]["server"],
        "receiver": dict(receiver),
        "handed_over_by": dict(handed_over_by),
        "date": date,
        "statement": "The server was handed back to its owner after its data were purged (certificate) and "
        "its media sanitized (media attestation).",
    }


def addendum_problems(document: Mapping[str, Any], certificate_hash: str, public_key_b64: str) -> list[str]:
    """Why an addendum does not belong to this certificate (empty when it does)."""
    try:
        body, _digest = checked_document(document, {"pipeline": public_key_b64}, what="addendum")
    except Ts24Error as exc:
        return [str(exc)]
    if body.get("format") not in (MEDIA_FORMAT, HANDOVER_FORMAT):
        return [f"not a certificate addendum ({body.get('format')!r})"]
    if body.get("certificate_sha256") != certificate_hash:
        return [f"{body['format']}: it belongs to another certificate"]
    return []
