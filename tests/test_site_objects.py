"""Every object and every file of a legacy site is accounted for, the same way in every output.

The demo site holds a view, a trigger (and on MariaDB a procedure and a
sequence) and a file no row references. Through the command line, as an
operator runs it, each must appear in the assessment, in the signed backup
manifest (definitions in the encrypted objects part, the file in the
attachment parts) and in the auditor's validation report, with the same
fingerprints; a figure that several outputs show (e.g. attachments whose
content differs from their MD5) reads the same and counts the same in each.
A text value holding NUL is reported where it was backed up as framed binary.
On SQLite and on MariaDB over ODBC.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from test_report_support import parse_page

from backups.catalog import find_backup
from backups.manifest import read_manifest
from backups.verify import decrypt_part, manifest_parts, read_ciphertext
from extract.attachments import PART_SCHEMA
from extract.objects import read_objects_part
from load.site_load import prepare_target
from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.main import main
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.keys import generate_custodian_identity, load_identity
from ts24_migrate.core.labels import ATTACHMENT_FINDINGS, NUL_TEXT_LABEL, finding_line
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.demo import generate_site

pytestmark = pytest.mark.slow

SITE = "demo"
NUL_TABLE, NUL_COLUMN = "TS24_CAU_HINH", "GIA_TRI"


def _cli(inventory: Path, *args: str, json_output: bool = True) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-i", str(inventory), *(["--json"] if json_output else []), *args])
    return code, out.getvalue(), err.getvalue()


def _plant_nul_text(legacy: sa.Engine) -> None:
    """A vendor setting whose text holds NUL (legal in SQLite and MariaDB text, not in PostgreSQL's)."""
    config = sa.table(NUL_TABLE, sa.column("NHOM"), sa.column("KHOA"), sa.column(NUL_COLUMN))
    with legacy.begin() as conn:
        changed = conn.execute(
            config.update()
            .where(config.c.NHOM == "HE_THONG", config.c.KHOA == "PHIEN_BAN")
            .values({NUL_COLUMN: "2.4.17\x00beta"})
        ).rowcount
    assert changed == 1


def _sqlite_site(folder: Path, recipient: str, signing_key: Path) -> tuple[Path, dict]:
    inventory = write_demo_inventory(folder, scale=0.05, backup_recipients=[recipient], signing_key=signing_key)
    legacy = sa.create_engine(f"sqlite:///{folder / 'legacy' / f'{SITE}.sqlite'}")
    _plant_nul_text(legacy)
    legacy.dispose()
    return inventory, json.loads((folder / "truth" / f"{SITE}.truth.json").read_text(encoding="utf-8"))


def _mariadb_site(folder: Path, recipient: str, signing_key: Path, url: str) -> tuple[Path, dict]:
    """The demo site on MariaDB (legacy over ODBC), its new system on SQLite."""
    folder.mkdir(parents=True)
    target_url = f"sqlite:///{folder / 'target.sqlite'}"
    target = store_engine(Secret(target_url))
    prepare_target(target)
    legacy = sa.create_engine(url)
    try:
        truth = generate_site(legacy, folder / "attachments", target=target, seed=42, scale=0.05, site_id=SITE)
        _plant_nul_text(legacy)
    finally:
        legacy.dispose()
        target.dispose()
    secrets = folder / "secrets"
    secrets.mkdir()
    for name, value in (("legacy.url", url), ("target.url", target_url)):
        (secrets / name).write_text(value + "\n", encoding="utf-8")
        (secrets / name).chmod(0o600)
    inventory = folder / "sites.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "work_dir": "work",
                "backup_dir": "backups",
                "signing_key": str(signing_key),
                "target": "file:secrets/target.url",
                "sites": [
                    {
                        "id": SITE,
                        "office": "01",
                        "legacy": "file:secrets/legacy.url",
                        "attachments": "attachments",
                        "cutover": truth.cutover.isoformat(),
                        "backup_recipients": [recipient],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return inventory, truth.to_dict()


def _decrypted(manifest, identity, *, objects: bool) -> list[bytes]:
    key = load_identity(identity)
    return [
        decrypt_part(read_ciphertext(manifest.path, ref), ref, key)
        for ref in manifest_parts(manifest)
        if (ref.objects if objects else ref.files)
    ]


def _backed_up_files(manifest, identity) -> dict[str, bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files: dict[str, bytes] = {}
    for plaintext in _decrypted(manifest, identity, objects=False):
        table = pq.read_table(pa.BufferReader(plaintext), schema=PART_SCHEMA)
        for path, data in zip(table.column("path").to_pylist(), table.column("data").to_pylist()):
            name = path.decode("utf-8", "surrogateescape")
            files[name] = files.get(name, b"") + data
    return files


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def test_objects_and_unreferenced_files_reach_assessment_manifest_and_report(engine, tmp_path, request):
    identity = tmp_path / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    signing_key = tmp_path / "keys" / "signing.key"
    generate_signing_key(signing_key)
    if engine == "sqlite":
        inventory, truth = _sqlite_site(tmp_path / "site", recipient, signing_key)
    else:
        inventory, truth = _mariadb_site(
            tmp_path / "site", recipient, signing_key, request.getfixturevalue("mariadb_database")()
        )
    planted_objects = {(o["kind"], o["name"]) for o in truth["objects"]}
    assert {"view", "trigger"} <= {kind for kind, _ in planted_objects}
    if engine == "mariadb":
        assert {"procedure", "sequence"} <= {kind for kind, _ in planted_objects}
    (unreferenced,) = truth["unreferenced_files"]

    # -- the assessment --------------------------------------------------------------------------
    code, out, err = _cli(inventory, "assess", SITE)
    assert code == 0, err
    assessed = json.loads(out)
    assessment = json.loads(Path(assessed["reports"]["json"]).read_text(encoding="utf-8"))
    in_assessment = {(o["kind"], o["name"]): o for o in assessment["objects"]}
    assert set(in_assessment) == planted_objects
    assert in_assessment["trigger", "TRG_HT_NHAT_KY_CHI_GHI_THEM"]["table"] == "HT_NHAT_KY"
    assert all(re.fullmatch(r"[0-9a-f]{64}", o["fingerprint"]) for o in in_assessment.values())
    assert "V_HO_SO_DANG_XU_LY" not in assessment["tables"]  # a view is not a table
    assert assessment["attachments"]["unreferenced"] == [unreferenced]
    assert assessment["summary"]["attachment_findings"]["unreferenced"] == 1
    html = Path(assessed["reports"]["html"]).read_text(encoding="utf-8")
    for _, name in planted_objects:
        assert name in html
    assert unreferenced["path"] in html and unreferenced["sha256"] in html

    # -- the backup: manifest lists them, the encrypted parts hold them ------------------------------
    code, out, err = _cli(inventory, "backup", SITE, json_output=False)
    assert code == 0, err
    backup_text = out
    manifest = read_manifest(find_backup(inventory.parent / "backups", SITE))
    in_manifest = {(o["kind"], o["name"]): o for o in manifest.objects["items"]}
    assert set(in_manifest) == planted_objects
    assert "V_HO_SO_DANG_XU_LY" not in manifest.tables  # its rows derive from tables: never extracted as data
    assert {k: o["fingerprint"] for k, o in in_manifest.items()} == {
        k: o["fingerprint"] for k, o in in_assessment.items()
    }
    assert b"CREATE" not in manifest.raw and b"HT_NHAT_KY chi duoc" not in manifest.raw  # definitions encrypted
    (objects_part,) = _decrypted(manifest, identity, objects=True)
    definitions = {(o.kind, o.name): o for o in read_objects_part(objects_part)}
    assert set(definitions) == planted_objects
    for key, obj in definitions.items():
        assert hashlib.sha256(obj.definition.encode()).hexdigest() == in_manifest[key]["fingerprint"]
    view_text = re.sub(r"[\s`]", "", definitions["view", "V_HO_SO_DANG_XU_LY"].definition).upper()
    assert "TRANG_THAIIN(0,1,2,3)" in view_text  # the definition itself, as the server gives it
    references = manifest.attachments["references"]
    assert references["unreferenced"] == [unreferenced]
    backed_up = _backed_up_files(manifest, identity)
    assert hashlib.sha256(backed_up[unreferenced["path"]]).hexdigest() == unreferenced["sha256"]
    assert manifest.tables[NUL_TABLE]["nul_text"] == {NUL_COLUMN: 1}

    code, out, err = _cli(inventory, "backup", "verify", SITE, "--identity", str(identity))
    assert code == 0, err
    assert json.loads(out)["objects_checked"] == len(planted_objects)
    code, _, err = _cli(inventory, "load", SITE)
    assert code == 0, err

    # -- the auditor's report --------------------------------------------------------------------
    code, out, err = _cli(inventory, "validate", SITE)
    assert code == 0, err + out
    validated = json.loads(out)
    report = json.loads(Path(validated["reports"]["json"]).read_text(encoding="utf-8"))
    in_report = {(o["kind"], o["name"]): o["fingerprint"] for o in report["backup"]["object_items"]}
    assert in_report == {k: o["fingerprint"] for k, o in in_manifest.items()}
    assert report["backup"]["attachment_references"]["unreferenced"] == [unreferenced]
    assert report["backup"]["nul_text"] == [[NUL_TABLE, NUL_COLUMN, 1]]
    page = parse_page(Path(validated["reports"]["html"]).read_text(encoding="utf-8"))
    for _, name in planted_objects:
        assert name in page.texts["objects"]
    assert unreferenced["path"] in page.texts["attachments-unreferenced"]
    assert unreferenced["sha256"] in page.texts["attachments-unreferenced"]
    assert page.tables["nul-text-table"][1:] == [[NUL_TABLE, NUL_COLUMN, "1"]]

    # -- one fact, one number, one wording: backup summary, manifest, assessment and report ------------
    md5_mismatch = len(references["md5_mismatch"])
    assert md5_mismatch == len(truth["attachments"]["md5_mismatch"]) > 0
    line = finding_line("md5_mismatch", md5_mismatch)
    assert line in backup_text
    assert any(line in warning for warning in manifest.data["warnings"])
    assert assessment["summary"]["attachment_findings"]["md5_mismatch"] == md5_mismatch
    assert report["backup"]["attachment_findings"]["md5_mismatch"] == md5_mismatch
    assert report["rejects"]["by_reason"]["ATTACHMENT_MD5_MISMATCH"] == md5_mismatch  # the load found the same
    for key, label in ATTACHMENT_FINDINGS.items():
        count = references.get("unreferenced_files") if key == "unreferenced" else len(references[key])
        assert (
            assessment["summary"]["attachment_findings"][key] == report["backup"]["attachment_findings"][key] == count
        ), key
        assert [label, str(count)] == next(row[:2] for row in page.tables["attachments-table"] if row[0] == label)
        if count:
            assert finding_line(key, count) in backup_text
    assert NUL_TEXT_LABEL in backup_text
