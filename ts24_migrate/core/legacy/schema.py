"""The TS24 legacy schema as the project relies on it (shared/spec/ts24-legacy.md).

Legacy names are kept verbatim here: this module is where legacy data is read
and mapped. Types are portable SQLAlchemy types; the variants give MariaDB
and SQL Server the sizes the spec asks for.

The live site can hold more tables than these; discovery never relies on
this list (see extract.discovery), it only uses it to know what is *mapped*.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql

metadata = sa.MetaData()

# Dialect keyword arguments (Table's **kw): typed as Any so that they do not match Table's named parameters.
_MARIADB: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mariadb_charset": "utf8mb4"}


def _blob() -> sa.types.TypeEngine[bytes]:
    return (
        sa.LargeBinary()
        .with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
        # SQLAlchemy's mssql.VARBINARY.__init__ carries no annotations.
        .with_variant(mssql.VARBINARY("max"), "mssql")  # type: ignore[no-untyped-call]
    )


def _text(length: int) -> sa.types.TypeEngine[str]:
    return sa.Unicode(length)


DM_COQUAN_BHXH = sa.Table(
    "DM_COQUAN_BHXH",
    metadata,
    sa.Column("MA_CQ", sa.String(10), primary_key=True),
    sa.Column("TEN_CQ", _text(200)),
    sa.Column("CAP", sa.SmallInteger),
    sa.Column("MA_TINH", sa.CHAR(2)),
    **_MARIADB,
)

DM_DONVI = sa.Table(
    "DM_DONVI",
    metadata,
    sa.Column("MA_DV", sa.String(15), primary_key=True),
    sa.Column("TEN_DV", _text(255)),
    sa.Column("MA_SO_THUE", sa.String(14), nullable=True),
    sa.Column("DIA_CHI", _text(500), nullable=True),
    sa.Column("MA_CQ", sa.String(10)),
    sa.Column("NGUOI_LIEN_HE", _text(100), nullable=True),
    sa.Column("DIEN_THOAI", _text(30), nullable=True),
    sa.Column("EMAIL", _text(100), nullable=True),
    sa.Column("PHUONG_THUC_GD", sa.SmallInteger),
    sa.Column("MA_IVAN", sa.String(5), nullable=True),
    sa.Column("SERIAL_CTS", sa.String(64), nullable=True),
    sa.Column("CTS_TU_NGAY", sa.DateTime, nullable=True),
    sa.Column("CTS_DEN_NGAY", sa.DateTime, nullable=True),
    sa.Column("NGAY_DANG_KY", sa.String(10)),
    sa.Column("TRANG_THAI", sa.SmallInteger),
    sa.Column("NGAY_CAP_NHAT", sa.DateTime),
    **_MARIADB,
)

NGUOI_LAO_DONG = sa.Table(
    "NGUOI_LAO_DONG",
    metadata,
    sa.Column("MA_SO_BHXH", sa.CHAR(10), primary_key=True),
    sa.Column("HO_TEN", _text(100)),
    sa.Column("NGAY_SINH", sa.String(10)),
    sa.Column("GIOI_TINH", sa.SmallInteger),
    sa.Column("SO_CCCD", sa.String(12), nullable=True),
    sa.Column("MA_DV", sa.String(15)),
    sa.Column("NGAY_CAP_NHAT", sa.DateTime),
    **_MARIADB,
)

HO_SO = sa.Table(
    "HO_SO",
    metadata,
    sa.Column("ID_HO_SO", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("SO_HO_SO", sa.String(30), unique=True),
    sa.Column("MA_DV", sa.String(15)),
    sa.Column("MA_THU_TUC", sa.String(10)),
    sa.Column("KY_KE_KHAI", sa.String(7)),
    sa.Column("NGAY_NOP", sa.DateTime),
    sa.Column("NGAY_TIEP_NHAN", sa.DateTime, nullable=True),
    sa.Column("NGAY_HEN_TRA", sa.Date, nullable=True),
    sa.Column("NGAY_TRA_KQ", sa.DateTime, nullable=True),
    sa.Column("TRANG_THAI", sa.SmallInteger),
    sa.Column("MA_CQ", sa.String(10)),
    sa.Column("CAN_BO_XU_LY", sa.String(50), nullable=True),
    sa.Column("SO_KET_QUA", sa.String(30), nullable=True),
    sa.Column("GHI_CHU", _text(1000), nullable=True),
    sa.Column("NGAY_CAP_NHAT", sa.DateTime),
    **_MARIADB,
)

HO_SO_TEP = sa.Table(
    "HO_SO_TEP",
    metadata,
    sa.Column("ID_TEP", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("ID_HO_SO", sa.BigInteger),
    sa.Column("MA_TO_KHAI", sa.String(20)),
    sa.Column("TEN_TEP", _text(255)),
    sa.Column("LOAI_TEP", sa.String(10)),
    sa.Column("NOI_DUNG", _blob(), nullable=True),
    sa.Column("DUONG_DAN", _text(500), nullable=True),
    sa.Column("KICH_THUOC", sa.Integer),
    sa.Column("MD5", sa.CHAR(32)),
    **_MARIADB,
)

HO_SO_LICH_SU = sa.Table(
    "HO_SO_LICH_SU",
    metadata,
    sa.Column("ID", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("ID_HO_SO", sa.BigInteger),
    sa.Column("THOI_GIAN", sa.DateTime),
    sa.Column("TRANG_THAI_CU", sa.SmallInteger, nullable=True),
    sa.Column("TRANG_THAI_MOI", sa.SmallInteger),
    sa.Column("NGUOI_THUC_HIEN", sa.String(50)),
    sa.Column("NOI_DUNG", _text(1000), nullable=True),
    **_MARIADB,
)

HT_NGUOI_DUNG = sa.Table(
    "HT_NGUOI_DUNG",
    metadata,
    sa.Column("TEN_DANG_NHAP", sa.String(50), primary_key=True),
    sa.Column("MAT_KHAU_HASH", sa.String(128)),
    sa.Column("HO_TEN", _text(100)),
    sa.Column("MA_CQ", sa.String(10)),
    sa.Column("TRANG_THAI", sa.SmallInteger),
    **_MARIADB,
)

HT_NHAT_KY = sa.Table(
    "HT_NHAT_KY",
    metadata,
    sa.Column("ID", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("THOI_GIAN", sa.DateTime),
    sa.Column("TEN_DANG_NHAP", sa.String(50)),
    sa.Column("HANH_DONG", _text(200)),
    sa.Column("DIA_CHI_IP", sa.String(45)),
    **_MARIADB,
)

# Tables whose rows the new system receives (after transform).
MAPPED_TABLES = ("DM_COQUAN_BHXH", "DM_DONVI", "NGUOI_LAO_DONG", "HO_SO", "HO_SO_TEP", "HO_SO_LICH_SU")
# Tables that hold file contents: (the column storing a content, the column with the size of a
# content kept on disk instead). The load bounds its chunks of these by bytes (load.chunking).
FILE_CONTENT_COLUMNS = {"HO_SO_TEP": ("NOI_DUNG", "KICH_THUOC")}
# Backed up and purged, never loaded: credentials and access logs do not migrate.
SYSTEM_TABLES = ("HT_NGUOI_DUNG", "HT_NHAT_KY")
KNOWN_TABLES = MAPPED_TABLES + SYSTEM_TABLES

# The column that tells when a row last changed, where the table has one.
WATERMARK_COLUMNS = {
    "DM_DONVI": "NGAY_CAP_NHAT",
    "NGUOI_LAO_DONG": "NGAY_CAP_NHAT",
    "HO_SO": "NGAY_CAP_NHAT",
    "HO_SO_LICH_SU": "THOI_GIAN",
}

# Dossier statuses (HO_SO.TRANG_THAI): 0-3 in flight, 4-6 finished.
IN_FLIGHT_STATUSES = (0, 1, 2, 3)
FINISHED_STATUSES = (4, 5, 6)
DOSSIER_STATUS_NAMES = {
    0: "submitted",
    1: "received",
    2: "processing",
    3: "supplement_requested",
    4: "done",
    5: "refused",
    6: "cancelled",
}


def is_mapped(table_name: str) -> bool:
    return table_name.upper() in MAPPED_TABLES
