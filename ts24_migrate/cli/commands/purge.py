"""`ts24-migrate purge ...` and `certificate verify`: retire a legacy site's data and prove it.

The steps (ts24_migrate/runs/purge.py) hold the wiring; these commands only
parse, call and print. Refusals by a gate are exit code 4 and name the gate
and what to do; nothing is destroyed before every gate holds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ts24_migrate.core.errors import ConfigError, VerificationError
from ts24_migrate.runs.app import App, pass_app

from .outcome import OutcomeLine, stage_outcome
from .progress import table_progress
from .restore_common import scratch_url

if TYPE_CHECKING:
    from ts24_migrate.core.config import Person
    from ts24_migrate.runs.purge import PurgeCertified, PurgePlanned

_KEY = click.Path(dir_okay=False, exists=True, path_type=Path)


@click.group("purge")
def purge() -> None:
    """Retire a drained site: stop writes and verify the final backup, plan, approve, execute, certify.

    \b
    Example:
      ts24-migrate -i sites.yaml purge prepare hn-01 --identity /media/usb/alice.age-identity
      ts24-migrate -i sites.yaml purge plan hn-01 --key keys/operator.key --operator "Nguyen Van A"
      ts24-migrate -i sites.yaml purge approve work/sites/hn-01/purge/3f1c.../plan.json --key /media/usb/approver.key
      ts24-migrate -i sites.yaml purge execute hn-01 --plan work/sites/hn-01/purge/3f1c.../plan.json \\
          --approval work/sites/hn-01/purge/3f1c.../approval-....json
    """


@purge.command("prepare")
@click.argument("site_id", metavar="SITE")
@click.option("--identity", required=True, type=_KEY, help="A custodian's age identity: decrypts the whole chain.")
@click.option(
    "--scratch-url-env",
    metavar="VAR",
    help="Restore-drill into the database whose URL is in VAR [default: a private SQLite file, shredded after].",
)
@pass_app
def prepare_command(app: App, site_id: str, identity: Path, scratch_url_env: str | None) -> None:
    """Prepare SITE's purge with a custodian: stop writes to its legacy database (that database only: SQLite
    file mode; MariaDB: the application accounts' write grants revoked; SQL Server: the database set
    READ_ONLY), take the final backup increment, decrypt and verify the whole backup chain, restore-drill it
    into a scratch database and check the live data equals it. The site must be DRAINED; it becomes
    FINAL_BACKUP_VERIFIED. Destroys nothing.

    \b
    Example:
      ts24-migrate -i sites.yaml purge prepare hn-01 --identity /media/usb/alice.age-identity
    """
    from ts24_migrate.runs.purge import prepare_step

    url = scratch_url(None, scratch_url_env) if scratch_url_env else None
    with stage_outcome(app, site_id) as outcome:
        result = prepare_step(app, site_id, identity=identity, scratch_url=url, scratch_url_env=scratch_url_env)
    head = result.chain[-1]
    lines = [
        f"site {site_id}: FINAL_BACKUP_VERIFIED (run {result.run_id})",
        f"  writes stopped: {result.write_stop['method']}",
        f"  final increment: {result.final_increment or 'none needed (nothing changed since the last one)'}",
        f"  chain of {len(result.chain)} backups up to {head['backup_id']} decrypted by the custodian: "
        f"{result.parts_decrypted} parts, {result.rows_recounted} rows, {result.files_recounted} files",
        f"  restore drill: {len(result.restore_drill.tables)} tables and the attachment folder match the "
        f"chain and the live data",
    ]
    outcome.emit(result, "\n".join(lines), verdict="PASSED")


@purge.command("plan")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=_KEY,
    help="Your own Ed25519 key (ts24-migrate keys generate --only signing): signs the plan as its author.",
)
@click.option("--operator", help="Your name, as the plan and certificate show it [default: purge.operator].")
@click.option("--role", help="Your role [default: purge.operator's].")
@pass_app
def plan_command(app: App, site_id: str, key_path: Path, operator: str | None, role: str | None) -> None:
    """Check every purge gate and write the signed plan of SITE's purge: every table, view, trigger,
    procedure and sequence, the database files, every file and folder under the attachment folder (links
    listed as links), with rows, sizes and fingerprints, the method for each, the backup chain, ledger head,
    server identity and gate results. A dry run: nothing on the site changes. Exit code 4 (and no plan)
    when a gate fails.

    Writes WORK_DIR/sites/SITE/purge/PLAN_ID/plan.json (signed) and plan.html.

    \b
    Example:
      ts24-migrate -i sites.yaml purge plan hn-01 --key keys/operator.key --operator "Nguyen Van A"
    """
    from ts24_migrate.core.signing import load_signing_key
    from ts24_migrate.runs.purge import plan_step

    with stage_outcome(app, site_id) as outcome:
        author = _person(app, operator, role, None)
        result = plan_step(app, site_id, author=author, author_key=load_signing_key(key_path))
        _plan_lines(outcome, site_id, result)


def _plan_lines(outcome: OutcomeLine, site_id: str, result: PurgePlanned) -> None:
    totals = result.totals
    lines = [
        f"site {site_id}: purge plan {result.plan_sha256}",
        f"  will destroy: {totals['tables']} tables ({totals['rows']} rows), {totals['objects']} other objects, "
        f"{totals['database_files']} database files, {totals['files']} attachment files "
        f"({totals['file_bytes']:,} bytes), {totals['links']} links, {totals['directories']} folders",
    ]
    lines += [f"  [x] {g['name']}: {g['detail']}" for g in result.gates]
    lines += [
        f"  plan: {result.plan}",
        f"  review: {result.html}",
        f"  approvals needed: {result.approvals_required}",
    ]
    outcome.emit(result, "\n".join(lines), report=result.html)


@purge.command("approve")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--key",
    "key_path",
    required=True,
    type=_KEY,
    help="Your Ed25519 key; its public half must be listed under approvers in sites.yaml.",
)
@click.option(
    "--valid-for",
    type=click.IntRange(1, 24 * 30),
    default=24,
    show_default=True,
    help="Hours the approval stays valid.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Approval file to write [default: next to the plan]."
)
@pass_app
def approve_command(app: App, plan_path: Path, key_path: Path, valid_for: int, out: Path | None) -> None:
    """Approve a purge PLAN: sign its hash with your key, valid for --valid-for hours. Review plan.html
    first. Refused (exit code 4) if you are not a listed approver or you made the plan.

    \b
    Example:
      ts24-migrate -i sites.yaml purge approve work/sites/hn-01/purge/3f1c.../plan.json --key /media/usb/b.key
    """
    from ts24_migrate.core.signing import load_signing_key
    from ts24_migrate.runs.purge import approve_step

    result = approve_step(
        app, plan_path, key=load_signing_key(key_path), valid_for=dt.timedelta(hours=valid_for), out=out
    )
    totals = result.totals
    OutcomeLine(app, result.site_id).emit(
        result,
        "\n".join(
            [
                f"site {result.site_id}: plan {result.plan_sha256} approved by {result.approver} "
                f"(key {result.key_id}) until {result.expires_at}",
                f"  scope: {totals['tables']} tables ({totals['rows']} rows), {totals['files']} files",
                f"  approval: {result.approval}",
            ]
        ),
    )


@purge.command("execute")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The approved plan (plan.json).",
)
@click.option(
    "--approval",
    "approvals",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="An approval file; repeat for each approver. Not needed to resume a purge already started.",
)
@click.option("--operator", help="Who performs the purge [default: purge.operator in sites.yaml].")
@click.option("--role", help="Their role.")
@click.option("--organisation", help="Their organisation.")
@click.option("--media-destination", help="Where the server's disks go next [default: purge.media_destination].")
@pass_app
def execute_command(
    app: App,
    site_id: str,
    plan_path: Path,
    approvals: tuple[Path, ...],
    operator: str | None,
    role: str | None,
    organisation: str | None,
    media_destination: str | None,
) -> None:
    """Execute SITE's approved purge: every gate again, immediately before the first destructive step; then
    destroy exactly the plan's scope (the legacy database; every file under the attachment folder overwritten
    once and deleted), journaled so that the same command resumes a killed run; verify nothing is left;
    scan for residues; write the signed certificate of sanitization. States PURGE_APPROVED, PURGED,
    CERTIFIED. Exit code 4 if a gate refuses (nothing destroyed), 1 if the verification fails.

    \b
    Example:
      ts24-migrate -i sites.yaml purge execute hn-01 --plan work/sites/hn-01/purge/3f1c.../plan.json \\
          --approval work/sites/hn-01/purge/3f1c.../approval-9a0b....json --operator "Nguyen Van A"
    """
    from ts24_migrate.runs.purge import execute_step

    performed = _person(app, operator, role, organisation) if operator else None
    with stage_outcome(app, site_id) as outcome:
        with table_progress(app, "purging") as progress:
            result = execute_step(
                app,
                site_id,
                plan_path=plan_path,
                approvals=list(approvals),
                performed_by=performed,
                media_destination=media_destination,
                progress=progress,
            )
        _execute_lines(outcome, site_id, result)


def _execute_lines(outcome: OutcomeLine, site_id: str, result: PurgeCertified) -> None:
    figures = result.figures
    lines = [
        f"site {site_id}: {result.state}" + (" (resumed)" if result.resumed else ""),
        f"  destroyed: {figures['tables_dropped']} tables and {figures['objects_dropped']} other objects; "
        f"{figures['files_overwritten']} files ({figures['bytes_overwritten']:,} bytes) overwritten and "
        f"deleted, {figures['links_removed']} links, {figures['directories_removed']} folders",
        f"  verified: {result.verification['database']}; {result.verification['attachments']}",
        f"  residue scan: {result.residue_scan}",
        f"  certificate: {result.certificate} ({result.certificate_sha256})",
        "  the disks still need media sanitization: see the certificate's residues",
    ]
    outcome.emit(result, "\n".join(lines), verdict="PASSED", report=result.html)


_DATE = click.DateTime(formats=["%Y-%m-%d"])


@purge.command("attest-media")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--device",
    "devices",
    multiple=True,
    required=True,
    metavar="SERIAL",
    help="Serial number of a sanitized disk; repeat for each.",
)
@click.option("--method", required=True, help='The media sanitization, e.g. "Purge: ATA SECURE ERASE ENHANCED".')
@click.option("--tool", required=True, help='The tool and its version, e.g. "nwipe 0.34".')
@click.option(
    "--report",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The tool's own report (its SHA-256 goes into the attestation).",
)
@click.option("--operator", help="Who sanitized the media [default: purge.operator].")
@click.option("--role", help="Their role.")
@click.option("--organisation", help="Their organisation.")
@click.option("--date", type=_DATE, help="When [default: today].")
@pass_app
def attest_media_command(
    app: App,
    site_id: str,
    devices: tuple[str, ...],
    method: str,
    tool: str,
    report: Path,
    operator: str | None,
    role: str | None,
    organisation: str | None,
    date: dt.datetime | None,
) -> None:
    """Record the media-level sanitization of a CERTIFIED site's disks (done with another tool): a signed
    addendum to the certificate (device serials, method, tool, operator, date, SHA-256 of the tool's report).

    \b
    Example:
      ts24-migrate -i sites.yaml purge attest-media hn-01 --device S4EVNF0M123 --device S4EVNF0M456 \\
          --method "Purge: ATA SECURE ERASE ENHANCED" --tool "nwipe 0.34" --report nwipe-hn-01.log
    """
    from ts24_migrate.runs.purge import attest_media_step

    with stage_outcome(app, site_id) as outcome:
        result = attest_media_step(
            app,
            site_id,
            devices=list(devices),
            method=method,
            tool=tool,
            report=report,
            performed_by=_person(app, operator, role, organisation),
            date=(date or dt.datetime.now()).date(),
        )
        outcome.emit(
            result,
            f"site {site_id}: media sanitization of {len(devices)} device(s) attested: "
            f"{result.media_attestation} ({result.sha256})",
        )


@purge.command("handover")
@click.argument("site_id", metavar="SITE")
@click.option("--receiver", required=True, help="Who received the server (name).")
@click.option("--receiver-organisation", default="TS24 JSC", show_default=True, help="Their organisation.")
@click.option("--operator", help="Who handed it over [default: purge.operator].")
@click.option("--date", type=_DATE, help="When [default: today].")
@pass_app
def handover_command(
    app: App, site_id: str, receiver: str, receiver_organisation: str, operator: str | None, date: dt.datetime | None
) -> None:
    """Record that SITE's server went back to its owner: a signed addendum (date, receiver), refused
    (exit code 4) until the media sanitization is attested.

    \b
    Example:
      ts24-migrate -i sites.yaml purge handover hn-01 --receiver "Pham Van D" --date 2025-10-01
    """
    from ts24_migrate.core.config import Person
    from ts24_migrate.runs.purge import handover_step

    with stage_outcome(app, site_id) as outcome:
        result = handover_step(
            app,
            site_id,
            receiver=Person(name=receiver, organisation=receiver_organisation),
            handed_over_by=_person(app, operator, None, None),
            date=(date or dt.datetime.now()).date(),
        )
        outcome.emit(result, f"site {site_id}: handed over to {receiver} on {result.date}: {result.handover}")


def _person(app: App, name: str | None, role: str | None, organisation: str | None) -> Person:
    from ts24_migrate.core.config import Person

    default = app.inventory.purge.operator
    if name is None and default is None:
        raise ConfigError("say who you are: --operator NAME (or purge.operator in sites.yaml)")
    if name is None:
        assert default is not None  # refused just above
        return default
    return Person(
        name=name,
        role=role or (default.role if default else None),
        organisation=organisation or (default.organisation if default else None),
    )


@click.group("certificate")
def certificate() -> None:
    """Certificates of sanitization: verify one offline; summarize the fleet's.

    \b
    Example:
      ts24-migrate certificate verify certificate.json --public-key signing.pub --backups backups --ledger hn-01.jsonl
    """


@certificate.command("verify")
@click.argument("certificate_path", metavar="CERT", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--public-key",
    "public_key",
    metavar="FILE_OR_BASE64",
    help="The pipeline's signing public key [default: the .pub next to the inventory's signing_key].",
)
@click.option(
    "--backups",
    "backup_root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The backup folder: every manifest the certificate names must be there, unchanged.",
)
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The site's audit ledger: it must verify, hold the certificate's ledger head and its issue.",
)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The plan: it must be the one the certificate names.",
)
@click.option(
    "--addendum",
    "addenda",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A media attestation or handover record: it must be signed and bound to this certificate.",
)
@pass_app
def verify_command(
    app: App,
    certificate_path: Path,
    public_key: str | None,
    backup_root: Path | None,
    ledger_path: Path | None,
    plan_path: Path | None,
    addenda: tuple[Path, ...],
) -> None:
    """Verify a certificate of sanitization offline, with public keys only: its signature, its approvals
    (each signed by its approver, of the plan it names, by keys other than the plan author's, valid when
    the purge began) and, when given, that every backup manifest, the ledger and the plan it names match.
    Exit code 1 if anything does not hold.

    \b
    Example:
      ts24-migrate certificate verify work/sites/hn-01/purge/3f1c.../certificate.json --public-key keys/signing.pub
      ts24-migrate certificate verify certificate.json --public-key signing.pub --backups backups \\
          --ledger work/ledger/hn-01.jsonl
    """
    from ts24_migrate.core.signing import load_public_key
    from ts24_migrate.runs.backup import trusted_public_key
    from ts24_migrate.runs.documents import check_certificate

    key = load_public_key(public_key) if public_key is not None else trusted_public_key(app, None)
    check = check_certificate(
        certificate_path, key, backup_root=backup_root, ledger_path=ledger_path, plan_path=plan_path, addenda=addenda
    )
    result = {"certificate": str(certificate_path), **check.to_dict()}
    if not check.ok:
        for problem in check.problems[1:]:
            click.echo(f"  problem: {problem}", err=True)
        raise VerificationError(f"certificate {certificate_path} does NOT verify: {check.problems[0]}")
    app.emit(
        result,
        "\n".join(
            [
                f"certificate {certificate_path} verifies ({check.certificate_sha256})",
                *[f"  [x] {line}" for line in check.checked],
            ]
        ),
    )


@certificate.command("summary")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for summary.html and summary.json [default: WORK_DIR/certificates].",
)
@pass_app
def summary_command(app: App, out: Path | None) -> None:
    """One page of the inventory's certificates of sanitization: per certified site its server, date,
    certificate SHA-256, and whether the media sanitization and the handover are recorded (done or
    pending); the sites not certified yet with their state. Reads the certificates (check each with
    `certificate verify`).

    \b
    Example:
      ts24-migrate -i sites.yaml certificate summary
    """
    from ts24_migrate.runs.certificates import write_certificate_summary

    summary, paths = write_certificate_summary(app, out)
    lines = [
        f"{summary['certified']} of {summary['total']} site(s) certified, {summary['retired']} handed over "
        f"(media sanitization pending: {summary['media_pending']}, handover pending: "
        f"{summary['handover_pending']})"
    ]
    lines += [
        f"  {r['site_id']}: {r['date']} certificate {r['certificate_sha256'][:16]}... media "
        f"{r['media_attestation']}, handover {r['handover']}"
        for r in summary["sites"]
        if r["certified"]
    ]
    lines += [f"  summary: {paths['html']}"]
    app.emit({**summary, "html": str(paths["html"]), "json": str(paths["json"])}, "\n".join(lines))


COMMANDS = [purge, certificate]
