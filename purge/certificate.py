"""The certificate of sanitization: what was destroyed, how, how it was verified, bound to everything
the purge relied on; and its offline verification.

The fields follow the sample certificate of NIST SP 800-88 Rev. 1 (Appendix
G): the person who performed the sanitization, the media (here: the server,
its database engine and version, the database, the attachment path, whether
the data was backed up and where), the sanitization (method type, method,
details, tool and version), the verification method and its result, the
media's destination, the date; plus the approvals. It says plainly that it
certifies a *logical* sanitization (Clear, by overwriting and deleting what
the tool can reach) and that the server's disks need a media-level
sanitization, listing the residues the tool could not reach.

It binds, by hash: the plan, every backup manifest of the chain and its head,
the ledger head, every approval (their documents are embedded), the figures,
and the fingerprints of every table, object and the attachment folder before
the purge, so that a restore of the chain can be held against it.

Example::

    document = signed_document(certificate_body(...), [("pipeline", key)])
    check = verify_certificate(document, public_key, backup_root=Path("backups"), ledger_path=ledger)
    check.ok, check.problems
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.ledger import read_events
from audit.verify import verify_ledger
from backups.chain import chain_fingerprints
from backups.increment import increments_dir
from backups.manifest import check_signature, read_manifest
from ts24_migrate.core.errors import Ts24Error, VerificationError
from ts24_migrate.core.signing import checked_document, document_hash, signature_problems

from .approvals import APPROVAL_FORMAT, parse_timestamp
from .documents import read_document, signer

CERTIFICATE_FORMAT = "ts24-sanitization-certificate/1"
CERTIFICATE_EVENT = "purge.certificate_issued"
STATEMENT = (
    "This certificate attests a LOGICAL sanitization (NIST SP 800-88 'Clear' of the data the tool can "
    "reach): the site's legacy database was dropped or its files overwritten once with random data and "
    "deleted, and every file under its attachment folder was overwritten and deleted, after the whole "
    "backup chain was verified by a custodian and found equal to the live data. It does NOT sanitize "
    "the server's disks: copies outside the tool's reach (listed under residues) remain until the "
    "media are sanitized (Purge or Destroy) with a tool made for it, before the server leaves the "
    "agency's control."
)


def certificate_body(
    *,
    plan: Mapping[str, Any],
    plan_hash: str,
    performed_by: Mapping[str, Any],
    approvals: Sequence[Mapping[str, Any]],
    started_at: str,
    completed_at: str,
    figures: Mapping[str, Any],
    verification: Mapping[str, Any],
    residues: Sequence[str],
    media_destination: str,
    ledger_head: Mapping[str, Any],
    backup_root: str,
    tool: Mapping[str, str],
    remaining_copies: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    files = [e for e in plan["attachments"]["entries"] if e["kind"] == "file"]
    database = plan["database"]
    return {
        "format": CERTIFICATE_FORMAT,
        "title": "Certificate of sanitization (logical)",
        "statement": STATEMENT,
        "site": plan["site"],
        "date": completed_at[:10],
        "performed_by": dict(performed_by),
        "approvals": {"required": plan["approvals"]["required"], "given": [dict(a) for a in approvals]},
        "media": {
            "server": plan["server"],
            "engine": database["engine"],
            "engine_version": plan["server"].get("version"),
            "database": database["name"],
            "attachment_path": plan["attachments"]["root"],
            "data_backed_up": "yes: every table, object definition and attachment file, in the verified "
            "backup chain below (encrypted to the custodians)",
            "backup_location": backup_root,
        },
        "sanitization": {
            "method_type": "Clear (logical)",
            "method": "overwrite and deletion",
            "method_details": {
                "database": database["method"],
                "attachments": "each file overwritten once with random data, fsynced, renamed, "
                "unlinked, its directory fsynced; links unlinked (never followed); "
                "empty folders removed",
            },
            "tool": dict(tool),
            "started_at": started_at,
            "completed_at": completed_at,
        },
        "verification": dict(verification),
        "residues_for_media_sanitization": list(residues),
        # Where the site's data remains besides the server, and why (purge.remaining_copies), at certification.
        "remaining_copies": [dict(c) for c in remaining_copies],
        "media_destination": media_destination,
        "figures": {
            **dict(figures),
            "rows": plan["totals"]["rows"],
            "files_planned": len(files),
            "file_bytes_planned": sum(e["size"] or 0 for e in files),
        },
        "bound_to": {
            "plan_sha256": plan_hash,
            "plan_author": {k: plan["author"].get(k) for k in ("name", "role", "key_id")},
            "backup_manifests": plan["backup_chain"]["backups"],
            "chain_head": plan["backup_chain"]["head"],
            "ledger_head_at_plan": plan["ledger_head"],
            "ledger_head": dict(ledger_head),
            "approval_sha256": [a["approval_sha256"] for a in approvals],
        },
        "pre_purge_fingerprints": {
            "tables": {t["name"]: t["fingerprint"] for t in plan["tables"]},
            "rows": {t["name"]: t["rows"] for t in plan["tables"]},
            "objects": {o["key"]: o["fingerprint"] for o in plan["objects"]},
            "attachments": plan["attachments"]["fingerprint"],
            "chain": plan["backup_chain"]["fingerprints"],
        },
    }


@dataclass
class CertificateCheck:
    certificate_sha256: str | None = None
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "certificate_sha256": self.certificate_sha256,
            "checked": self.checked,
            "problems": self.problems,
        }


def _manifest_folder(backup_root: Path, site_id: str, entry: Mapping[str, Any]) -> Path:
    backup_id: str = entry["backup_id"]
    if entry.get("kind") == "incremental":
        return increments_dir(backup_root, site_id) / backup_id
    return Path(backup_root) / site_id / backup_id


def _check_approvals(body: Mapping[str, Any], check: CertificateCheck) -> None:
    given = body["approvals"]["given"]
    plan_hash = body["bound_to"]["plan_sha256"]
    author = body["bound_to"]["plan_author"].get("key_id")
    started = parse_timestamp(body["sanitization"]["started_at"])
    keys: set[str] = set()
    for index, approval in enumerate(given, start=1):
        document = approval.get("document") or {}
        entry = signer(document, "approver") if isinstance(document, dict) and "signatures" in document else None
        if entry is None or signature_problems(document, "approver", approval.get("public_key")):
            check.problems.append(f"approval {index} ({approval.get('approver')}): its signature does not verify")
            continue
        inner = document["body"]
        if document_hash(inner) != approval.get("approval_sha256"):
            check.problems.append(f"approval {index}: its hash is not the one the certificate names")
        if inner.get("format") != APPROVAL_FORMAT or inner.get("plan_sha256") != plan_hash:
            check.problems.append(f"approval {index} ({approval.get('approver')}): it approves another plan")
        if entry.get("key_id") == author:
            check.problems.append(f"approval {index}: by the plan's own author")
        if (
            not parse_timestamp(inner["approved_at"]) <= started + dt.timedelta(minutes=5)
            or parse_timestamp(inner["expires_at"]) <= started
        ):
            check.problems.append(f"approval {index} ({approval.get('approver')}): not valid when the purge began")
        keys.add(str(entry.get("key_id")))
    if len(keys) < int(body["approvals"]["required"]):
        check.problems.append(f"{len(keys)} distinct approvals, {body['approvals']['required']} required")
    if set(body["bound_to"]["approval_sha256"]) != {a.get("approval_sha256") for a in given}:
        check.problems.append("the approvals bound do not match the approvals embedded")
    check.checked.append(
        f"{len(keys)} approval(s) of plan {plan_hash[:16]}... by distinct keys other than the author's"
    )


def verify_certificate(
    document: Mapping[str, Any],
    public_key_b64: str,
    *,
    backup_root: Path | None = None,
    ledger_path: Path | None = None,
    plan_path: Path | None = None,
) -> CertificateCheck:
    """Check a certificate offline: its signature, its approvals, and (when given) the backups, ledger, plan."""
    check = CertificateCheck()
    try:
        body, digest = checked_document(
            document, {"pipeline": public_key_b64}, what="certificate", refusal=VerificationError
        )
    except VerificationError as exc:
        check.problems.append(str(exc))
        return check
    check.certificate_sha256 = digest
    check.checked.append("signature by the pipeline key")
    if body.get("format") != CERTIFICATE_FORMAT:
        check.problems.append(f"not a certificate of sanitization ({body.get('format')!r})")
        return check
    try:
        _check_approvals(body, check)
    except (KeyError, TypeError, ValueError) as exc:
        check.problems.append(f"the approvals are malformed ({type(exc).__name__})")
    site_id = body["site"]["id"]
    if plan_path is not None:
        try:
            plan = read_document(plan_path, what="plan", refusal=VerificationError)
            _plan_body, plan_hash = checked_document(
                plan, {"pipeline": public_key_b64}, what="plan", refusal=VerificationError
            )
            if plan_hash != body["bound_to"]["plan_sha256"]:
                check.problems.append(f"the plan {plan_path} is not the one the certificate names")
            else:
                check.checked.append("the plan's hash and signature")
        except Ts24Error as exc:
            check.problems.append(str(exc))
    if backup_root is not None:
        manifests = []
        for entry in body["bound_to"]["backup_manifests"]:
            folder = _manifest_folder(backup_root, site_id, entry)
            try:
                manifest = read_manifest(folder)
            except VerificationError as exc:
                check.problems.append(f"backup {entry['backup_id']}: {exc}")
                continue
            if manifest.fingerprint != entry["manifest_fingerprint"]:
                check.problems.append(
                    f"backup {entry['backup_id']}: its manifest is not the one the certificate "
                    f"names (fingerprint differs)"
                )
            check.problems += [f"backup {entry['backup_id']}: {p}" for p in check_signature(folder, public_key_b64)]
            manifests.append(manifest)
        if manifests and len(manifests) == len(body["bound_to"]["backup_manifests"]):
            if chain_fingerprints(manifests) != body["pre_purge_fingerprints"]["chain"]:
                check.problems.append("the backup chain's fingerprints are not the pre-purge fingerprints")
            else:
                check.checked.append(f"{len(manifests)} backup manifests: hashes, signatures, chain fingerprints")
    if ledger_path is not None:
        try:
            ledger = verify_ledger(ledger_path, [public_key_b64], expected_head=body["bound_to"]["ledger_head"]["hash"])
        except Ts24Error as exc:
            check.problems.append(f"ledger: {exc}")
        else:
            check.problems += [f"ledger: {p}" for p in ledger.problems]
            issued = [
                e
                for _line, e, _problem in read_events(ledger_path)
                if e is not None
                and e.event == CERTIFICATE_EVENT
                and e.site == site_id
                and e.data.get("certificate_sha256") == digest
            ]
            if not issued:
                check.problems.append("ledger: no event records the issue of this certificate")
            elif ledger.ok:
                check.checked.append("the ledger verifies, holds the certificate's ledger head and its issue")
    return check
