"""What a real TS24 server holds beside its tables: a view, a trigger, a procedure, a stray file.

A vendor view over the dossiers still being processed, a trigger that keeps
the access log append-only, and (on MariaDB, which has them) a stored
procedure the dashboard calls and a sequence for dossier numbers. None holds
rows of its own, yet each must be found, backed up and, later, purged. The
attachment folder also keeps a scanned file that no HO_SO_TEP row refers to
(left behind when a dossier was entered again): it must be found and backed up
all the same.

The definitions are fixed SQL of the demo's own schema (no value is
interpolated into them).
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.engine import Engine

from .attachments import AttachmentFolder, pdf_content
from .world import World

VIEW = "V_HO_SO_DANG_XU_LY"
TRIGGER = "TRG_HT_NHAT_KY_CHI_GHI_THEM"
PROCEDURE = "SP_DEM_HO_SO_DANG_XU_LY"
SEQUENCE = "SEQ_SO_HO_SO"
UNREFERENCED_FILE = "tam/hồ_sơ_cũ_chưa_nhập.pdf"

_VIEW_SQL = (
    "CREATE VIEW V_HO_SO_DANG_XU_LY AS SELECT ID_HO_SO, SO_HO_SO, MA_DV, MA_THU_TUC, TRANG_THAI, "
    "NGAY_HEN_TRA FROM HO_SO WHERE TRANG_THAI IN (0, 1, 2, 3)"
)
_DEFINITIONS: dict[str, list[tuple[str, str, str | None, str]]] = {
    "sqlite": [
        ("view", VIEW, None, _VIEW_SQL),
        (
            "trigger",
            TRIGGER,
            "HT_NHAT_KY",
            "CREATE TRIGGER TRG_HT_NHAT_KY_CHI_GHI_THEM BEFORE DELETE ON HT_NHAT_KY "
            "BEGIN SELECT RAISE(ABORT, 'HT_NHAT_KY chi duoc ghi them'); END",
        ),
    ],
    "mysql": [
        ("view", VIEW, None, _VIEW_SQL),
        (
            "trigger",
            TRIGGER,
            "HT_NHAT_KY",
            "CREATE TRIGGER TRG_HT_NHAT_KY_CHI_GHI_THEM BEFORE DELETE ON HT_NHAT_KY FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'HT_NHAT_KY chi duoc ghi them'",
        ),
        (
            "procedure",
            PROCEDURE,
            None,
            "CREATE PROCEDURE SP_DEM_HO_SO_DANG_XU_LY() READS SQL DATA SELECT TRANG_THAI, COUNT(*) AS SO_HO_SO "
            "FROM HO_SO WHERE TRANG_THAI IN (0, 1, 2, 3) GROUP BY TRANG_THAI",
        ),
        ("sequence", SEQUENCE, None, "CREATE SEQUENCE SEQ_SO_HO_SO START WITH 100000"),
    ],
}
_DEFINITIONS["mariadb"] = _DEFINITIONS["mysql"]


def write_objects(legacy: Engine) -> list[dict[str, Any]]:
    """Create the demo's view, trigger (and on MariaDB procedure and sequence); returns what the truth
    file records: [{"kind", "name", "table"}]. Other engines get none (the truth says so)."""
    definitions = _DEFINITIONS.get(legacy.dialect.name, [])
    if legacy.dialect.name in ("mysql", "mariadb") and not _has_sequences(legacy):
        definitions = [d for d in definitions if d[0] != "sequence"]  # MySQL, or MariaDB before 10.3
    with legacy.begin() as conn:
        for _kind, _name, _table, sql in definitions:
            conn.exec_driver_sql(sql)
    return [{"kind": kind, "name": name, "table": table} for kind, name, table, _sql in definitions]


def _has_sequences(legacy: Engine) -> bool:
    with legacy.connect() as conn:
        version = str(conn.exec_driver_sql("SELECT VERSION()").scalar())
    if "mariadb" not in version.lower():
        return False
    major, minor = (int(p) for p in version.split(".")[:2])
    return (major, minor) >= (10, 3)


def write_unreferenced_file(folder: AttachmentFolder, world: World) -> list[dict[str, Any]]:
    """A scanned file no row refers to; returns [{"path", "size", "sha256"}] for the truth file."""
    content = pdf_content(world.rng("unreferenced-file"))
    folder.write(UNREFERENCED_FILE, content)
    return [{"path": UNREFERENCED_FILE, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}]
