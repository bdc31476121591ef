"""Tables a real TS24 server holds beside the known schema: an import table and vendor config.

IMPORT_TAM has no primary key and holds exact duplicate rows (a batch
imported twice); TS24_CAU_HINH is keyed by two columns. Neither is mapped to
the new system: both must be backed up, fingerprinted and purged like the
rest, and reported as "not mapped".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import dirty_data as dd
from .identifiers import social_insurance_no
from .names import person_name
from .units import IVAN_PROVIDERS, UnitDirectory
from .world import World, random_moment
from .writer import ChunkedInserter

metadata = sa.MetaData()
MARIADB_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mariadb_charset": "utf8mb4",
}

IMPORT_TAM = sa.Table(
    "IMPORT_TAM",
    metadata,
    sa.Column("MA_SO_BHXH", sa.String(10)),
    sa.Column("HO_TEN", sa.Unicode(100)),
    sa.Column("NGAY_SINH", sa.String(10)),
    sa.Column("MA_DV", sa.String(15)),
    sa.Column("MUC_LUONG", sa.Numeric(18, 2)),
    sa.Column("NGUOI_NHAP", sa.String(50)),
    sa.Column("NGAY_NHAP", sa.DateTime),
    **MARIADB_TABLE_OPTIONS,
)

TS24_CAU_HINH = sa.Table(
    "TS24_CAU_HINH",
    metadata,
    sa.Column("NHOM", sa.String(30), primary_key=True),
    sa.Column("KHOA", sa.String(60), primary_key=True),
    sa.Column("GIA_TRI", sa.Unicode(500)),
    sa.Column("NGAY_CAP_NHAT", sa.DateTime),
    **MARIADB_TABLE_OPTIONS,
)


@dataclass(frozen=True)
class ExtraTables:
    """The tables written beside the TS24 schema (plain names, or demo.awkward_names', which adds
    more tables to `metadata`)."""

    metadata: sa.MetaData
    imports: sa.Table  # no primary key
    config: sa.Table  # a two-column key


PLAIN_EXTRA_TABLES = ExtraTables(metadata, IMPORT_TAM, TS24_CAU_HINH)


def _config_rows(world: World) -> list[dict]:
    updated = world.cutover_at - dt.timedelta(days=200)
    rows = [
        ("HE_THONG", "PHIEN_BAN", "2.4.17"),
        ("HE_THONG", "MA_CQ", world.office_code),
        ("HE_THONG", "TEN_MAY_CHU", f"ts24-{world.site_id}"),
        ("HE_THONG", "SO_NGAY_LUU_NHAT_KY", "365"),
        ("EMAIL", "SMTP_HOST", "mail.example.vn"),
        ("EMAIL", "NGUOI_GUI", "Bộ phận một cửa"),
        ("TIEP_NHAN", "GIO_BAT_DAU", "07:30"),
        ("TIEP_NHAN", "GIO_KET_THUC", "17:00"),
    ]
    rows += [("IVAN", code, f"Nhà cung cấp dịch vụ I-VAN {code}") for code in IVAN_PROVIDERS]
    rows += [
        ("THU_TUC", "600", "Đăng ký tham gia BHXH, BHYT, BHTN"),
        ("THU_TUC", "600a", "Báo giảm lao động"),
        ("THU_TUC", "600b", "Điều chỉnh mức đóng"),
        ("THU_TUC", "630a", "Giải quyết hưởng chế độ ốm đau"),
    ]
    return [{"NHOM": g, "KHOA": k, "GIA_TRI": v, "NGAY_CAP_NHAT": updated} for g, k, v in rows]


def write_extra_tables(
    legacy: Engine, world: World, units: UnitDirectory, defects: dd.DefectLog, tables: ExtraTables = PLAIN_EXTRA_TABLES
) -> dict[str, int]:
    """Writes the import and configuration tables (the same rows whatever their names)."""
    rng = world.rng("IMPORT_TAM")
    n = world.sizes.import_rows
    duplicated = set(rng.sample(range(n), dd.count_for(0.1, n)))
    imported_at = random_moment(
        rng, world.cutover_at - dt.timedelta(days=300), world.cutover_at - dt.timedelta(days=30)
    )
    written = {}
    with ChunkedInserter(legacy, tables.imports) as out:
        for index in range(n):
            male = rng.random() < 0.5
            # Numbers beyond the persons' range: imported people not yet in NGUOI_LAO_DONG.
            number = social_insurance_no(world.province_code, 10**7 + index)
            row = {
                "MA_SO_BHXH": number,
                "HO_TEN": person_name(rng, male),
                "NGAY_SINH": f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1965, 2005)}",
                "MA_DV": units.clean_code(units.random_referable(rng)),
                "MUC_LUONG": rng.randrange(4_960, 60_000) * 1_000,
                "NGUOI_NHAP": "admin",
                "NGAY_NHAP": imported_at,
            }
            copies = 1 + (rng.choice((1, 2)) if index in duplicated else 0)
            for _ in range(copies):
                out.add(dict(row))
            if copies > 1:
                defects.add(tables.imports.name, number, None, dd.DUPLICATE_ROW, copies)
    written[tables.imports.name] = out.rows_written
    config = _config_rows(world)
    with ChunkedInserter(legacy, tables.config) as out:
        for row in config:
            out.add(row)
    written[tables.config.name] = out.rows_written
    return written
