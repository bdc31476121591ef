"""Approvals: a listed approver signs the plan's hash, with an expiry.

An approval is a signed document (purge/documents.py) whose body names the
site, the plan's hash, the approver (name, key) and when it expires; its one
signature, role "approver", is by the approver's own Ed25519 key. Execution
counts the approvals that hold: signed by a key the inventory lists under
``approvers:``, of this very plan, not expired, and by a key other than the
plan author's and the pipeline's; each approver counts once.

Example::

    document = approval_document(plan_body, plan_hash, key=alice_key, name="Tran Thi B", valid_for=timedelta(hours=24))
    valid, problems = check_approvals(documents, plan_hash=h, plan_body=body, approvers=listed, pipeline_key=pub)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ts24_migrate.core.signing import SigningKey, checked_document, key_id_of, signed_document

from .documents import signer

APPROVAL_FORMAT = "ts24-purge-approval/1"
STATEMENT = (
    "I have reviewed this purge plan and approve the destruction of exactly its scope, on the "
    "condition that every gate still holds when it is executed."
)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))


@dataclass(frozen=True)
class ListedApprover:
    name: str
    role: str | None
    public_key: str  # base64

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)


def approval_document(
    plan_body: Mapping[str, Any],
    plan_hash: str,
    *,
    key: SigningKey,
    name: str,
    role: str | None,
    valid_for: dt.timedelta,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    moment = now or utc_now()
    body = {
        "format": APPROVAL_FORMAT,
        "site": plan_body["site"]["id"],
        "plan_sha256": plan_hash,
        "plan_created_at": plan_body["created_at"],
        "approver": {"name": name, "role": role, "key_id": key.key_id, "public_key": key.public_key_b64},
        "approved_at": timestamp(moment),
        "expires_at": timestamp(moment + valid_for),
        "statement": STATEMENT,
    }
    return signed_document(body, [("approver", key)])


@dataclass
class ApprovalCheck:
    valid: list[dict[str, Any]]  # {approver, key_id, approval_sha256, document}
    problems: list[str]


def check_approvals(
    documents: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    plan_hash: str,
    plan_body: Mapping[str, Any],
    approvers: Sequence[ListedApprover],
    pipeline_key: str,
    now: dt.datetime | None = None,
) -> ApprovalCheck:
    """Which approvals hold for this plan; (name, document) pairs in, each problem named by its file."""
    moment = now or utc_now()
    listed = {a.key_id: a for a in approvers}
    author_key = plan_body["author"]["key_id"]
    pipeline_id = key_id_of(pipeline_key)
    valid: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for name, document in documents:
        entry = signer(document, "approver")
        if entry is None:
            problems.append(f"{name}: not an approval (no approver signature)")
            continue
        try:
            body, digest = checked_document(document, {"approver": entry.get("public_key")}, what=name)
        except Exception as exc:  # a refusal: report it with the others
            problems.append(str(exc))
            continue
        key_id = entry.get("key_id")
        if body.get("format") != APPROVAL_FORMAT:
            problems.append(f"{name}: not a purge approval ({body.get('format')!r})")
        elif body.get("plan_sha256") != plan_hash:
            problems.append(
                f"{name}: approves another plan ({str(body.get('plan_sha256'))[:16]}...), not this one "
                f"({plan_hash[:16]}...)"
            )
        elif body.get("site") != plan_body["site"]["id"]:
            problems.append(f"{name}: approves a purge of site {body.get('site')}")
        elif key_id not in listed or listed[key_id].public_key != entry.get("public_key"):
            problems.append(f"{name}: signed by key {key_id}, which the inventory does not list under approvers")
        elif key_id == author_key:
            problems.append(
                f"{name}: signed by the plan's own author ({plan_body['author'].get('name')}): a "
                f"purge needs a second person"
            )
        elif key_id == pipeline_id:
            problems.append(f"{name}: signed by the pipeline key, which approves nothing")
        elif parse_timestamp(body["expires_at"]) <= moment:
            problems.append(f"{name}: expired at {body['expires_at']}")
        elif parse_timestamp(body["approved_at"]) > moment + dt.timedelta(minutes=5):
            problems.append(f"{name}: dated in the future ({body['approved_at']})")
        elif key_id in seen:
            problems.append(f"{name}: a second approval by {listed[key_id].name} (each approver counts once)")
        else:
            seen.add(key_id)
            valid.append(
                {
                    "approver": listed[key_id].name,
                    "role": listed[key_id].role,
                    "key_id": key_id,
                    "public_key": entry["public_key"],
                    "approved_at": body["approved_at"],
                    "expires_at": body["expires_at"],
                    "approval_sha256": digest,
                    "document": dict(document),
                }
            )
    return ApprovalCheck(valid, problems)
