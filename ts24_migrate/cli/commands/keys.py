"""`ts24-migrate keys ...`: make custodian identities and the signing key.

Only public halves are ever printed; private keys stay in their 0600 files.
"""

from __future__ import annotations

from pathlib import Path

import click

from ts24_migrate.core.errors import UsageError
from ts24_migrate.runs.app import App, pass_app

SIGNING_KEY_NAME = "signing.key"
IDENTITY_SUFFIX = ".age-identity"


@click.group("keys")
def keys() -> None:
    """Custodian identities (decrypt backups) and the signing key (signs manifests and the ledger)."""


@keys.command("generate")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the key files into (created if missing).",
)
@click.option(
    "--custodian",
    default="custodian",
    show_default=True,
    help="Custodian name: the identity file is OUT/NAME.age-identity.",
)
@click.option(
    "--only",
    type=click.Choice(["identity", "signing"]),
    default=None,
    help="Make only the custodian identity (on the custodian's offline machine) "
    "or only the signing key (on the pipeline host).",
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@pass_app
def generate(app: App, out_dir: Path, custodian: str, only: str | None, json_output: bool) -> None:
    """Write a new custodian identity and/or signing key; print only their public halves.

    Writes OUT/NAME.age-identity (age X25519 identity, 0600, the format of
    age-keygen: the stock `age -d -i FILE` decrypts our backups with it),
    OUT/signing.key (Ed25519, PEM PKCS8, 0600) and OUT/signing.pub. Existing
    files are never overwritten. Put the printed recipient into the site's
    backup_recipients and the signing key's path into `signing_key`.

    \b
    Example:
      ts24-migrate keys generate --out keys --custodian alice
      ts24-migrate keys generate --out /media/usb --custodian bob --only identity
      ts24-migrate keys generate --out keys --only signing --json
    """
    from ts24_migrate.core.config import SITE_ID
    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key, key_id_of, public_key_path

    app.json_output = app.json_output or json_output
    if not SITE_ID.match(custodian):
        raise UsageError("--custodian must be lower-case letters, digits, '-' or '_' (it names a file)")
    identity_path = out_dir / f"{custodian}{IDENTITY_SUFFIX}"
    signing_path = out_dir / SIGNING_KEY_NAME
    targets = []
    if only in (None, "identity"):
        targets.append(identity_path)
    if only in (None, "signing"):
        targets += [signing_path, public_key_path(signing_path)]
    existing = [str(path) for path in targets if path.exists() or path.is_symlink()]
    if existing:  # check all first, so that nothing is half made
        raise UsageError(
            f"{', '.join(existing)} already exist(s); keys are never overwritten (choose another --out or --custodian)"
        )

    result: dict[str, str] = {}
    lines: list[str] = []
    if only in (None, "identity"):
        recipient = generate_custodian_identity(identity_path)
        result.update(identity_file=str(identity_path), recipient=recipient)
        lines += [
            f"custodian identity: {identity_path} (0600) - keep it offline, it decrypts the backups",
            f"  recipient (add to backup_recipients in sites.yaml): {recipient}",
        ]
    if only in (None, "signing"):
        public_key = generate_signing_key(signing_path)
        result.update(
            signing_key_file=str(signing_path),
            public_key_file=str(public_key_path(signing_path)),
            public_key=public_key,
            key_id=key_id_of(public_key),
        )
        lines += [
            f"signing key: {signing_path} (0600) - set signing_key: {signing_path} in sites.yaml",
            f"  public key ({public_key_path(signing_path)}, for auditors): {public_key}",
            f"  key id: {key_id_of(public_key)}",
        ]
    app.emit(result, "\n".join(lines))


COMMANDS = [keys]
