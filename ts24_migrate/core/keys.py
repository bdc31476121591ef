"""Custodian identities (age X25519) and the pipeline's signing key (Ed25519).

Two kinds of keys, with different homes:

- a *custodian identity* decrypts backups. It is made once per custodian, kept
  offline, and only its public *recipient* (``age1...``) goes into
  ``sites.yaml``. The file has exactly the format ``age-keygen`` writes, so the
  stock ``age -d -i FILE`` decrypts our backups without this tool.
- the *signing key* signs backup manifests, the audit ledger and certificates.
  Its public half (``signing.pub``: the raw 32-byte Ed25519 key in base64) is
  all an auditor needs to verify offline.

Private key files are created 0600 and never overwritten; a private key file
that group or others can read is refused, because a key that may have been
read by others can no longer prove anything.

Example::

    recipient = generate_custodian_identity(Path("keys/alice.age-identity"))  # 'age1...'
    public_key = generate_signing_key(Path("keys/signing.key"))              # writes keys/signing.pub too
    key = load_signing_key(Path("keys/signing.key"))
    assert verify_signature(public_key, b"manifest", key.sign(b"manifest"))
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import stat
from pathlib import Path
from typing import NoReturn

import pyrage
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ts24_migrate.core.config import AGE_RECIPIENT
from ts24_migrate.core.durable import fsync_dir
from ts24_migrate.core.errors import ConfigError

AGE_SECRET_PREFIX = "AGE-SECRET-KEY-1"
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


# -- custodian identities (age) ------------------------------------------------


def generate_custodian_identity(path: Path) -> str:
    """Write a new age X25519 identity to `path` (0600), as age-keygen does; return its recipient.

    Refuses to overwrite an existing file: a lost identity is lost backups.
    """
    path = Path(path)
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    _write_private_file(path, text.encode("ascii"))
    return recipient


def load_identity(path: Path) -> pyrage.x25519.Identity:
    """Read an age identity file (ours or age-keygen's); refuse it if group/others can read it."""
    path = Path(path)
    secrets = [
        line for line in _read_private_text(path).splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(secrets) != 1 or not secrets[0].strip().startswith(AGE_SECRET_PREFIX):
        # Never quote the file's content: it may be key material in the wrong place.
        raise ConfigError(
            f"not an age identity file (expected exactly one {AGE_SECRET_PREFIX}... line, as age-keygen writes)",
            path=str(path),
        )
    try:
        return pyrage.x25519.Identity.from_str(secrets[0].strip())
    except Exception:
        raise ConfigError("the AGE-SECRET-KEY line is not a valid age X25519 identity", path=str(path)) from None


def recipient_of(path: Path) -> str:
    """The age1... recipient of an identity file, or of a file holding just a recipient.

    A recipient file lets the pipeline host name custodians without holding their
    private keys.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror or type(exc).__name__})", path=str(path)) from None
    if AGE_SECRET_PREFIX not in text:
        recipients = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if len(recipients) == 1 and AGE_RECIPIENT.match(recipients[0]):
            return recipients[0]
        raise ConfigError("holds neither an age identity nor a single age1... recipient", path=str(path))
    return str(load_identity(path).to_public())


# -- signing key (Ed25519) -------------------------------------------------------


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
    _write_private_file(path, pem)
    _write_new_file(pub_path, (key.public_key_b64 + "\n").encode("ascii"), mode=0o644)
    return key.public_key_b64


def load_signing_key(path: Path) -> SigningKey:
    """Read the Ed25519 private key that `generate_signing_key` wrote (0600 required)."""
    path = Path(path)
    data = _read_private_bytes(path)
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


def _check_private_mode(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError("key file does not exist", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the key file ({exc.strerror or type(exc).__name__})", path=str(path)) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError("is not a regular file", path=str(path))
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"private key file is open to group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}",
            path=str(path),
        )


def _read_private_bytes(path: Path) -> bytes:
    _check_private_mode(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the key file ({exc.strerror or type(exc).__name__})", path=str(path)) from None


def _read_private_text(path: Path) -> str:
    try:
        return _read_private_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not a text key file", path=str(path)) from None


def _write_private_file(path: Path, content: bytes) -> None:
    _write_new_file(path, content, mode=0o600)


def _write_new_file(path: Path, content: bytes, *, mode: int) -> None:
    """Create `path` exclusively (never overwrite), with `mode` from the first byte, durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: no overwrite, and no race with another writer; O_NOFOLLOW: no symlink trick.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise ConfigError(
            "already exists; keys are never overwritten (choose another path, or move the old key away yourself)",
            path=str(path),
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot create the key file ({exc.strerror or type(exc).__name__})", path=str(path)
        ) from None
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it; we want exactly `mode`
        view = memoryview(content)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    fsync_dir(path.parent)
