"""The signed documents an operator or an auditor hands around: approvals written from a flow's input,
certificates of sanitization checked offline (with their addenda)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from purge.addenda import addendum_problems
from purge.certificate import CertificateCheck, verify_certificate
from purge.documents import read_document, write_document
from ts24_migrate.core.errors import VerificationError


def write_approval(path: Path, document: Mapping[str, Any]) -> str:
    """Keep an approval (as given, signed) next to its plan, once; returns its hash. Its signature and
    expiry are checked when the purge runs, not here."""
    return write_document(path, document)


def check_certificate(
    certificate_path: Path,
    public_key_b64: str,
    *,
    backup_root: Path | None = None,
    ledger_path: Path | None = None,
    plan_path: Path | None = None,
    addenda: Sequence[Path] = (),
) -> CertificateCheck:
    """A certificate's signature and facts (and, when given, that the backups, ledger and plan it names
    match), then each addendum: signed and bound to this certificate. Problems are listed, not raised."""
    document = read_document(certificate_path, what="certificate", refusal=VerificationError)
    check = verify_certificate(
        document, public_key_b64, backup_root=backup_root, ledger_path=ledger_path, plan_path=plan_path
    )
    for path in addenda:
        problems = addendum_problems(
            read_document(path, what="addendum", refusal=VerificationError),
            check.certificate_sha256 or "",
            public_key_b64,
        )
        check.problems += [f"{path}: {p}" for p in problems]
        if not problems:
            check.checked.append(f"addendum {path.name}: signed and bound to this certificate")
    return check
