"""The site inventory (`sites.yaml`), validated once at the boundary.

Example::

    version: 1
    work_dir: work                 # reports, staging, control store (relative to this file)
    backup_dir: backups            # encrypted backup parts and manifests
    signing_key: keys/signing.key  # Ed25519 private key (0600) that signs manifests and the ledger
    control_store: env:TS24_CONTROL_URL   # optional; default SQLite in work_dir
    target: env:TS24_TARGET_URL           # optional; default SQLite in work_dir
    limits:                        # optional: Prefect concurrency limits of the flows (flows.limits)
      legacy_server: 1             #   sites read from one legacy server at once
      target: 4                    #   sites load into (and validate against) the target at once
    approvers:                     # who may approve a purge (purge approve): name and Ed25519 public key
      - {name: Tran Thi B, role: Head of IT, public_key: keys/approvers/tran-thi-b.pub}
    purge:                         # optional
      approvals_required: 1        #   approvals a purge needs, from approvers other than the plan's author
      operator: {name: Nguyen Van A, role: Operator, organisation: BHXH Ha Noi}   # certificate defaults
      media_destination: returned to TS24 JSC after media sanitization
    show_personal_data: false      # optional: reports mask personal data unless true (internal use only)
    sites:
      - id: hn-01
        office: "01"
        legacy: env:TS24_HN01_LEGACY_URL  # a secret reference, never the URL itself
        legacy_server: sql-hanoi   # optional: sites on one database server share its limit (default: the id)
        attachments: /srv/ts24/hn-01/files
        cutover: 2025-07-01
        backup_recipients: [age1...]
        purge:                     # optional; MariaDB: the accounts TS24 writes with (their write
          application_accounts: ["ts24app@%"]   # grants on the site's database are revoked for the purge)

Any error names the file, the site and the field, in one line.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError
from .personal_data import Masking
from .secrets import Secret, SecretRef

SITE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # part of a Prefect limit's name
OFFICE_CODE = re.compile(r"^\d{2}(\d{2})?$")
AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
ACCOUNT = re.compile(r"^[A-Za-z0-9_.$-]{1,80}@[A-Za-z0-9_.%:-]{1,255}$")


class SitePurge(BaseModel):
    """How writes to this site's legacy database are stopped for its purge (purge/write_stop.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    application_accounts: list[str] = Field(
        default_factory=list, description="MariaDB/MySQL accounts ('user@host') the TS24 software writes with"
    )

    @field_validator("application_accounts")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        for account in value:
            if not ACCOUNT.match(account):
                raise ValueError(f"{account!r} is not an account 'user@host' (host may be %)")
        return value


class SiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    office: str
    name: str | None = None
    legacy: str = Field(description="secret reference to the legacy connection URL")
    attachments: Path | None = None
    cutover: dt.date
    backup_recipients: list[str] = Field(default_factory=list)
    legacy_server: str | None = Field(
        default=None, description="the database server holding the legacy database, when several sites share one"
    )
    purge: SitePurge = Field(default_factory=SitePurge)

    @property
    def server(self) -> str:
        """The legacy server this site reads from: its own unless the inventory says it is shared."""
        return self.legacy_server or self.id

    @field_validator("id")
    @classmethod
    def _site_id(cls, value: str) -> str:
        if not SITE_ID.match(value):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (at most 63)")
        return value

    @field_validator("office", mode="before")
    @classmethod
    def _office(cls, value: Any) -> str:
        text = str(value)
        if not OFFICE_CODE.match(text):
            raise ValueError("must be a 2-digit province or 4-digit district office code (quote it in YAML)")
        return text

    @field_validator("legacy_server")
    @classmethod
    def _server_name(cls, value: str | None) -> str | None:
        if value is not None and not SERVER_NAME.match(value):
            raise ValueError("must be letters, digits, '.', '-' or '_' (at most 63)")
        return value

    @field_validator("legacy")
    @classmethod
    def _legacy_ref(cls, value: str) -> str:
        SecretRef.parse(value)
        return value

    @field_validator("backup_recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for recipient in value:
            if not AGE_RECIPIENT.match(recipient):
                raise ValueError(f"{recipient[:12]}... is not an age public key (age1...)")
        return value


class Limits(BaseModel):
    """How many sites may work at once on one shared resource (none: no limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    legacy_server: int | None = Field(default=None, ge=1, description="sites reading one legacy server")
    target: int | None = Field(default=None, ge=1, description="sites loading into the target")


class Person(BaseModel):
    """Who performed a purge, as the certificate of sanitization names them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    role: str | None = None
    organisation: str | None = None


class Approver(BaseModel):
    """A person who may approve a purge plan, with the Ed25519 public key their approvals verify with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    role: str | None = None
    public_key: str = Field(description="a .pub file (relative to the inventory) or the base64 key itself")


class PurgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    approvals_required: int = Field(default=1, ge=1)
    operator: Person | None = None
    media_destination: str | None = None


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    work_dir: Path = Path("work")
    backup_dir: Path = Path("backups")
    signing_key: Path | None = None
    control_store: str | None = None
    target: str | None = None
    limits: Limits = Field(default_factory=Limits)
    approvers: list[Approver] = Field(default_factory=list)
    purge: PurgeSettings = Field(default_factory=PurgeSettings)
    # Reports mask personal data (ts24_migrate/core/personal_data.py); true shows it, for internal use only.
    show_personal_data: bool = False
    sites: list[SiteConfig]

    # Set by load_inventory; not part of the YAML.
    source_path: Path | None = Field(default=None, exclude=True)

    @field_validator("control_store", "target")
    @classmethod
    def _store_ref(cls, value: str | None) -> str | None:
        if value is not None:
            SecretRef.parse(value)
        return value

    @property
    def base_dir(self) -> Path:
        return self.source_path.parent if self.source_path else Path.cwd()

    def resolve_path(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def masking(self) -> Masking:
        """How the site's reports show personal data: masked unless `show_personal_data: true`."""
        return Masking(show=self.show_personal_data)

    @property
    def work_path(self) -> Path:
        return self.resolve_path(self.work_dir)

    @property
    def backup_path(self) -> Path:
        return self.resolve_path(self.backup_dir)

    @property
    def signing_key_path(self) -> Path | None:
        return self.resolve_path(self.signing_key) if self.signing_key else None

    def site(self, site_id: str) -> SiteConfig:
        for site in self.sites:
            if site.id == site_id:
                return site
        known = ", ".join(s.id for s in self.sites) or "none"
        raise ConfigError(f"no site {site_id!r} in the inventory (known: {known})", path=str(self.source_path))

    def site_dir(self, site_id: str) -> Path:
        return self.work_path / "sites" / site_id

    def attachments_path(self, site: SiteConfig) -> Path | None:
        return self.resolve_path(site.attachments) if site.attachments else None

    def legacy_url(self, site: SiteConfig) -> Secret:
        return self._resolve(site.legacy, site=site.id, field="legacy")

    def target_url(self) -> Secret:
        if self.target is None:
            return Secret(f"sqlite:///{self.work_path / 'target.sqlite'}")
        return self._resolve(self.target, field="target")

    def control_store_url(self) -> Secret:
        if self.control_store is None:
            return Secret(f"sqlite:///{self.work_path / 'control.sqlite'}")
        return self._resolve(self.control_store, field="control_store")

    def _resolve(self, reference: str, *, site: str | None = None, field: str) -> Secret:
        ref = SecretRef.parse(reference, self.base_dir)
        try:
            return ref.resolve()
        except ConfigError as exc:
            raise ConfigError(str(exc), path=str(self.source_path), site=site, field=field) from None


class _InventoryLoader(yaml.SafeLoader):
    """Safe YAML that leaves dates as text, so pydantic reports a bad date with its field."""


_InventoryLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate `sites.yaml`; every error is one ConfigError line."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_InventoryLoader)
    except FileNotFoundError:
        raise ConfigError("inventory file not found", path=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"not valid YAML{where}: {problem}", path=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping with a 'sites' list", path=str(path))
    try:
        inventory = Inventory.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(exc, raw, path) from None
    ids = [s.id for s in inventory.sites]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"site id {duplicates[0]!r} appears more than once", path=str(path))
    inventory.source_path = path.resolve()
    return inventory


def _one_line(exc: ValidationError, raw: dict[str, Any], path: Path) -> ConfigError:
    error = exc.errors()[0]
    loc = list(error["loc"])
    site = None
    if len(loc) >= 2 and loc[0] == "sites" and isinstance(loc[1], int):
        entries = raw.get("sites") or []
        entry = entries[loc[1]] if loc[1] < len(entries) else None
        site = str(entry.get("id")) if isinstance(entry, dict) and entry.get("id") else f"#{loc[1] + 1}"
        loc = loc[2:]
    field = ".".join(str(part) for part in loc) or None
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    elif error["type"] == "missing":
        message = "is required"
    message = message.removeprefix("Value error, ")
    return ConfigError(message, path=str(path), site=site, field=field)
