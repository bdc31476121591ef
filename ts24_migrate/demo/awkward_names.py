"""Awkward legacy names (`demo-data --awkward-names`): tables and columns named the way servers
configured by hand over many years name them.

The mapped and system tables keep the names the spec gives them (the load and
the purge find them by those names). The import and configuration tables are
renamed, two more tables are added, and two mapped tables get a column the TS24
schema does not have (backed up and reported, never loaded). Between them the
names hold spaces, SQL reserved words, mixed case, Vietnamese letters, single
and double quotes, backticks, brackets, dots, colons, a percent sign, a
question mark and leading digits: every stage must quote them through the SQL
dialect.

Example::

    truth = generate_site(legacy, Path("files"), scale=0.05, awkward_names=True)
    sorted(truth.tables)   # ['2024_import.Mixed Case', 'Bảng "tạm" 2019', ..., 'select', 'target:units']
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ts24_migrate.core.legacy import schema as legacy_schema

from .extra_tables import IMPORT_TAM, MARIADB_TABLE_OPTIONS, TS24_CAU_HINH, ExtraTables
from .units import UnitDirectory
from .world import World
from .writer import ChunkedInserter

IMPORT_TABLE = 'Bảng "tạm" 2019'  # IMPORT_TAM: no primary key, duplicate rows
CONFIG_TABLE = "select"  # TS24_CAU_HINH: a two-column key
NOTES_TABLE = "2024_import.Mixed Case"  # added: a one-column key
SHADOW_TABLE = "target:units"  # added: no key, and named like the report's entries for target tables
IMPORT_COLUMNS = {
    "MA_SO_BHXH": 'Mã số "BHXH"',
    "HO_TEN": "Họ và tên",
    "NGAY_SINH": "order",
    "MUC_LUONG": "Mức lương 100%",
    "NGUOI_NHAP": "it's",
    "NGAY_NHAP": "Ngày nhập",
}
CONFIG_COLUMNS = {"NHOM": "Mixed Case", "KHOA": "a.b", "GIA_TRI": "Giá trị `x`", "NGAY_CAP_NHAT": "2024_import"}
# A column the TS24 schema does not have, per mapped table: (its name, the value a row gets, or NULL).
EXTRA_MAPPED_COLUMNS = {"HO_SO": 'Ghi chú "cũ"', "DM_DONVI": "select"}


def _renamed(table: sa.Table, metadata: sa.MetaData, name: str, columns: dict[str, str]) -> sa.Table:
    """A copy of `table` named `name`, its columns renamed; each column keeps its key, so the
    generator's rows (dicts by the plain names) insert unchanged."""
    copies = [
        sa.Column(
            columns.get(c.name, c.name),
            c.type,
            key=c.key,
            primary_key=c.primary_key,
            nullable=c.nullable,
            autoincrement=False if c.primary_key else "auto",
        )
        for c in table.columns
    ]
    return sa.Table(name, metadata, *copies, **MARIADB_TABLE_OPTIONS)


def awkward_extra_tables() -> ExtraTables:
    metadata = sa.MetaData()
    sa.Table(
        NOTES_TABLE,
        metadata,
        sa.Column("Số TT", sa.Integer, key="number", primary_key=True, autoincrement=False),
        sa.Column("it's", sa.String(15), key="unit"),
        sa.Column("[ghi chú]", sa.Unicode(200), key="note"),
        sa.Column("giờ:phút", sa.String(5), key="time"),
        **MARIADB_TABLE_OPTIONS,
    )
    sa.Table(
        SHADOW_TABLE,
        metadata,
        sa.Column("đơn vị", sa.Unicode(50), key="unit"),
        sa.Column("số lượng?", sa.Integer, key="count"),
        **MARIADB_TABLE_OPTIONS,
    )
    return ExtraTables(
        metadata,
        _renamed(IMPORT_TAM, metadata, IMPORT_TABLE, IMPORT_COLUMNS),
        _renamed(TS24_CAU_HINH, metadata, CONFIG_TABLE, CONFIG_COLUMNS),
    )


def mapped_schema_with_extra_columns() -> sa.MetaData:
    """The TS24 schema (ts24_migrate.core.legacy.schema) with EXTRA_MAPPED_COLUMNS added, to create the tables
    from; the generator still writes through the plain tables, which leave the extra columns NULL."""
    metadata = sa.MetaData()
    for table in legacy_schema.metadata.sorted_tables:
        copy = table.to_metadata(metadata)
        if table.name in EXTRA_MAPPED_COLUMNS:
            copy.append_column(sa.Column(EXTRA_MAPPED_COLUMNS[table.name], sa.Unicode(100), nullable=True))
    return metadata


def fill_extra_columns(legacy: Engine, schema: sa.MetaData) -> None:
    """Give the extra columns values on some rows (the others stay NULL)."""
    dossiers, units = schema.tables["HO_SO"], schema.tables["DM_DONVI"]
    with legacy.begin() as conn:
        conn.execute(
            dossiers.update()
            .where(dossiers.c.ID_HO_SO % 3 == 0)
            .values({EXTRA_MAPPED_COLUMNS["HO_SO"]: sa.literal("bản cũ ") + dossiers.c.SO_HO_SO})
        )
        conn.execute(
            units.update()
            .where(units.c.TRANG_THAI == 1)
            .values({EXTRA_MAPPED_COLUMNS["DM_DONVI"]: sa.literal("chọn: ") + units.c.MA_DV})
        )


def write_added_tables(legacy: Engine, world: World, units: UnitDirectory, tables: ExtraTables) -> dict[str, int]:
    """Writes the tables only awkward names have; returns their row counts."""
    rng = world.rng(NOTES_TABLE)
    with ChunkedInserter(legacy, tables.metadata.tables[NOTES_TABLE]) as out:
        for index in range(max(5, round(10 * world.scale))):
            out.add(
                {
                    "number": index + 1,
                    "unit": units.clean_code(units.random_referable(rng)),
                    "note": f'Ghi chú số {index + 1}: đơn vị đã "đối chiếu" lúc {index % 10 + 7}h',
                    "time": f"{index % 10 + 7:02d}:{index * 7 % 60:02d}",
                }
            )
    written = {NOTES_TABLE: out.rows_written}
    with ChunkedInserter(legacy, tables.metadata.tables[SHADOW_TABLE]) as out:
        for index in range(3):
            out.add({"unit": units.clean_code(units.random_referable(rng)), "count": index})
    written[SHADOW_TABLE] = out.rows_written
    return written
