"""Custodian identities (age X25519) and the private key files of every key.

A *custodian identity* decrypts backups. It is made once per custodian, kept
offline, and only its public *recipient* (``age1...``) goes into
``sites.yaml``. The file has exactly the format ``age-keygen`` writes, so the
stock ``age -d -i FILE`` decrypts our backups without this tool. (The
pipeline's Ed25519 signing key is in ``signing.py``.)

Private key files are created 0600 and never overwritten; a private key file
that group or others can read is refused, because a key that may have been
read by others can no longer prove anything.

Example::

    recipient = generate_custodian_identity(Path("keys/alice.age-identity"))  # 'age1...'
    identity = load_identity(Path("keys/alice.age-identity"))
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pyrage

from ts24_migrate.core.config import AGE_RECIPIENT
from ts24_migrate.core.durable import fsync_dir
from ts24_migrate.core.errors import ConfigError

AGE_SECRET_PREFIX = "AGE-SECRET-KEY-1"


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
    write_private_file(path, text.encode("ascii"))
    return recipient


def load_identity(path: Path) -> pyrage.x25519.Identity:
    """Read an age identity file (ours or age-keygen's); refuse it if group/others can read it."""
    path = Path(path)
    secrets = [
        line for line in read_private_text(path).splitlines() if line.strip() and not line.lstrip().startswith("#")
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


# -- private key files (custodian identities here, the signing key in signing.py) ----------------


def check_private_mode(path: Path) -> None:
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


def read_private_bytes(path: Path) -> bytes:
    check_private_mode(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the key file ({exc.strerror or type(exc).__name__})", path=str(path)) from None


def read_private_text(path: Path) -> str:
    try:
        return read_private_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not a text key file", path=str(path)) from None


def write_private_file(path: Path, content: bytes) -> None:
    write_new_file(path, content, mode=0o600)


def write_new_file(path: Path, content: bytes, *, mode: int) -> None:
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
