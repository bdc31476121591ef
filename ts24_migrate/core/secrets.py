"""Secret references and redaction.

A secret is never written inline in the inventory; it is referenced:

    env:TS24_HN01_LEGACY_URL      an environment variable
    file:secrets/hn01.url         a file (relative to the inventory), mode 0600
    prefect:ts24-hn01-legacy      a Prefect Secret block

`Secret` keeps the value out of repr/str so that printing a config, a log line
or an exception never shows it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

SECRET_SCHEMES = ("env", "file", "prefect")


class Secret:
    """A secret value that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives, e.g. ``env:TS24_TARGET_URL``; safe to print."""

    scheme: str
    name: str
    base_dir: Path | None = None

    @classmethod
    def parse(cls, text: str, base_dir: Path | None = None) -> SecretRef:
        scheme, sep, name = str(text).partition(":")
        if not sep or scheme not in SECRET_SCHEMES or not name:
            raise ValueError(
                "must be a secret reference like env:NAME, file:PATH or prefect:BLOCK "
                "(secrets are never written inline)"
            )
        return cls(scheme, name, base_dir)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.name}"

    def resolve(self) -> Secret:
        if self.scheme == "env":
            value = os.environ.get(self.name)
            if value is None:
                raise ConfigError(f"secret {self}: environment variable {self.name} is not set")
            return Secret(value.strip())
        if self.scheme == "file":
            path = Path(self.name)
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            try:
                mode = path.stat().st_mode
            except OSError:
                raise ConfigError(f"secret {self}: file {path} does not exist or cannot be read") from None
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(f"secret {self}: file {path} is readable by others; run chmod 600 {path}")
            return Secret(path.read_text(encoding="utf-8").strip())
        reader = _BLOCK_READERS.get(self.scheme)
        if reader is None:
            raise ConfigError(
                f"secret {self}: {self.scheme} secrets are read only through ts24-migrate's commands and flows"
            )
        try:
            return Secret(reader(self.name))
        except Exception as exc:  # the error text of a block store never contains the secret value
            raise ConfigError(
                f"secret {self}: {self.scheme} Secret block could not be loaded ({type(exc).__name__})"
            ) from None


# Readers of secret stores that live outside the kernel, by scheme: the kernel never imports Prefect, the
# run wiring registers its reader (ts24_migrate.runs.app) before any inventory is loaded.
_BLOCK_READERS: dict[str, Callable[[str], str]] = {}


def register_secret_store(scheme: str, reader: Callable[[str], str]) -> None:
    """Let `scheme:NAME` references be read by reader(NAME) (e.g. "prefect" and its Secret blocks)."""
    if scheme not in SECRET_SCHEMES or scheme in ("env", "file"):
        raise ValueError(f"{scheme!r} is not a secret store scheme")
    _BLOCK_READERS[scheme] = reader


# A password in an ODBC string: plain up to ";", or braced ({...}, "}}" for "}") and then holding anything.
_PASSWORD_IN_TEXT = re.compile(r"(?i)((?:password|pwd|passwd)\s*=\s*)(\{(?:[^}]|\}\})*\}?|[^;&\s]+)")
_USERINFO = re.compile(r"(//[^:/@\s]+:)([^@\s]+)(@)")


def redact_url(url: str) -> str:
    """Hide the password of a database URL or ODBC string, e.g. for logs.

    >>> redact_url("mssql+pyodbc://sa:s3cret@host/db?driver=X")
    'mssql+pyodbc://sa:***@host/db?driver=X'
    """
    text = url
    if "://" in url:  # only a URL can parse; plain messages need no SQLAlchemy import (CLI start-up)
        from sqlalchemy.engine import make_url

        try:
            parsed = make_url(url)
            # A whole ODBC string may ride in the query (?odbc_connect=...PWD=...), percent-encoded.
            parsed = parsed.update_query_dict({key: _redact_values(value) for key, value in parsed.query.items()})
            text = parsed.render_as_string(hide_password=True)
        except Exception:
            pass
    text = _USERINFO.sub(r"\1***\3", text)
    return _PASSWORD_IN_TEXT.sub(r"\1***", text)


def _redact_values(value: str | tuple[str, ...]) -> str | list[str]:
    if isinstance(value, str):
        return _PASSWORD_IN_TEXT.sub(r"\1***", value)
    return [_PASSWORD_IN_TEXT.sub(r"\1***", v) for v in value]


def scrub(text: str, *secrets: Secret) -> str:
    """Remove every known secret value (and URL passwords) from a message."""
    for secret in secrets:
        value = secret.reveal()
        if value:
            text = text.replace(value, redact_url(value))
            from sqlalchemy.engine import make_url

            try:
                password = make_url(value).password
            except Exception:
                password = None
            if password:
                text = text.replace(str(password), "***")
    return redact_url(text) if "://" in text else _PASSWORD_IN_TEXT.sub(r"\1***", text)
