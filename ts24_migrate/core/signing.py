"""Signing: the pipeline's Ed25519 key, the one canonical JSON, and signed documents.

Everything an auditor verifies offline is signed here: backup manifests, the audit ledger's events and
head, the purge plan, approvals, the certificate of sanitization and its addenda. One canonical form of
JSON (`canonical_json`) is what is hashed and signed, so a verifier in any language can rebuild the bytes.

- the *signing key* (``signing.key``, PEM PKCS8, mode 0600) never prints itself; its public half
  (``signing.pub``: the raw 32-byte Ed25519 key in base64) is all an auditor needs;
- a *signed document* is ``{"body": {...}, "signatures": [{"role", "algorithm", "key_id", "public_key",
  "signature"}, ...]}``; every signature is over ``canonical_json(body)`` and the document's hash (what
  approvals and the certificate cite) is the SHA-256 of those bytes.

Example::

    public_key = generate_signing_key(Path("keys/signing.key"))              # writes keys/signing.pub too
    key = load_signing_key(Path("keys/signing.key"))
    assert verify_signature(public_key, b"manifest", key.sign(b"manifest"))
    document = signed_document(body, [("pipeline", key)])
    body, digest = checked_document(document, {"pipeline": public_key}, what="plan")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ts24_migrate.core.errors import ConfigError, GateRefused, Ts24Error
from ts24_migrate.core.keys import AGE_SECRET_PREFIX, read_private_bytes, write_new_file, write_private_file

PUBLIC_KEY_SUFFIX = ".pub"
KEY_ID_LENGTH = 16  # hex characters of SHA-256(public key): short enough to read, 64 bits to tell keys apart


class SigningKey:
    """An Ed25519 private key that signs but never shows itself.

    >>> key = SigningKey.generate()
    >>> verify_signature(key.public_key_b64, b"data", key.sign(b"data"))
    True
    >>> repr(key).startswith("SigningKey(key_id=")
    True
    """

    __slots__ = ("_private", "_public_raw")

    def __init__(self, private_key: Ed25519PrivateKey):
        self._private = private_key
        self._public_raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key held in memory only (tests, or before writing it with generate_signing_key)."""
        return cls(Ed25519PrivateKey.generate())

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(bytes(data))

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self._public_raw).decode("ascii")

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key_b64)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        # Pickling would copy the private key into whatever stores the pickle (a cache, a result).
        raise TypeError("a SigningKey cannot be pickled; pass the key file path and load it where needed")


def public_key_path(private_key_path: Path) -> Path:
    """Where the public half of a signing key lives: ``signing.key`` -> ``signing.pub``."""
    return Path(private_key_path).with_suffix(PUBLIC_KEY_SUFFIX)


def generate_signing_key(path: Path) -> str:
    """Write a new Ed25519 key: `path` (PEM PKCS8, 0600) and its public key next to it; return that.

    The public file holds the raw 32-byte key in base64, one line.
    """
    path = Path(path)
    pub_path = public_key_path(path)
    if pub_path == path:
        raise ConfigError(
            f"the private key file must not end in {PUBLIC_KEY_SUFFIX} (its public key is written there)",
            path=str(path),
        )
    for target in (path, pub_path):
        if target.exists() or target.is_symlink():
            raise ConfigError(
                "already exists; keys are never overwritten (choose another path, or move the old key away yourself)",
                path=str(target),
            )
    key = SigningKey.generate()
    pem = key._private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private_file(path, pem)
    write_new_file(pub_path, (key.public_key_b64 + "\n").encode("ascii"), mode=0o644)
    return key.public_key_b64


def load_signing_key(path: Path) -> SigningKey:
    """Read the Ed25519 private key that `generate_signing_key` wrote (0600 required)."""
    path = Path(path)
    data = read_private_bytes(path)
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(
            "the signing key is encrypted with a passphrase; this tool needs an "
            "unencrypted PKCS8 key protected by its file mode",
            path=str(path),
        ) from None
    except Exception:
        raise ConfigError(
            "not a PEM private key (expected the file written by `ts24-migrate keys generate`)", path=str(path)
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(f"is a {type(private).__name__.removeprefix('_')} key, not Ed25519", path=str(path))
    return SigningKey(private)


def load_public_key(path_or_b64: str | Path) -> str:
    """A public key as base64 of its raw 32 bytes, from a .pub file, a PEM public key file or base64 text.

    >>> load_public_key(SigningKey.generate().public_key_b64) != ""
    True
    """
    candidate = Path(path_or_b64)
    try:
        is_file = isinstance(path_or_b64, Path) or candidate.is_file()
    except OSError:  # e.g. a long base64 string is not a valid file name
        is_file = False
    if is_file:
        try:
            text = candidate.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the public key file ({getattr(exc, 'strerror', None) or type(exc).__name__})",
                path=str(candidate),
            ) from None
        return _parse_public_key(text, where=str(candidate))
    return _parse_public_key(str(path_or_b64).strip(), where=None)


def verify_signature(public_key_b64: str, data: bytes, signature: bytes) -> bool:
    """True when `signature` is the Ed25519 signature of `data` by that public key.

    A malformed public key is a configuration error (ConfigError), not a failed check.
    """
    public = Ed25519PublicKey.from_public_bytes(_raw_public_key(public_key_b64))
    try:
        public.verify(bytes(signature), bytes(data))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def key_id_of(public_key_b64: str) -> str:
    """Short, stable name of a public key: the first 16 hex characters of SHA-256 of its raw bytes."""
    return hashlib.sha256(_raw_public_key(public_key_b64)).hexdigest()[:KEY_ID_LENGTH]


def canonical_json(value: Any, *, utf8: bool = False) -> bytes:
    """The one canonical JSON of the project: keys sorted at every level, compact separators.

    Signed documents and backup manifests use the ASCII form (non-ASCII as \\u escapes); the audit
    ledger writes UTF-8 (``utf8=True``) and refuses NaN and infinities, so that any JSON reader,
    in any language, gets back the bytes that were signed.

    >>> canonical_json({"b": 1, "a": {"d": "ễ", "c": None}})
    b'{"a":{"c":null,"d":"\\\\u1ec5"},"b":1}'
    >>> canonical_json({"b": 1, "a": {"d": "ễ", "c": None}}, utf8=True)
    b'{"a":{"c":null,"d":"\\xe1\\xbb\\x85"},"b":1}'
    """
    if utf8:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# -- signed documents: the purge plan, approvals, the certificate and its addenda ------------------


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


# -- helpers ---------------------------------------------------------------------


def _parse_public_key(text: str, *, where: str | None) -> str:
    if "PRIVATE KEY" in text or AGE_SECRET_PREFIX in text:
        raise ConfigError("this is a private key; give the public key (the .pub file) instead", path=where)
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        try:
            public = serialization.load_pem_public_key(text.encode("ascii"))
        except Exception:
            raise ConfigError("not a valid PEM public key", path=where) from None
        if not isinstance(public, Ed25519PublicKey):
            raise ConfigError("the PEM public key is not an Ed25519 key", path=where)
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")
    try:
        raw = _raw_public_key(text)
    except ConfigError:
        if where is None:
            if "/" in text or "." in text:  # meant as a file name; never echo anything else
                raise ConfigError(f"public key file {text} does not exist") from None
            raise ConfigError(
                "neither an existing public key file nor a base64 Ed25519 public key (44 characters)"
            ) from None
        raise ConfigError("does not hold a base64 Ed25519 public key (one line of 44 characters)", path=where) from None
    return base64.b64encode(raw).decode("ascii")


def _raw_public_key(public_key_b64: str) -> bytes:
    try:
        raw = base64.b64decode(str(public_key_b64).strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError("not a base64 Ed25519 public key (32 bytes, 44 base64 characters)")
    return raw
