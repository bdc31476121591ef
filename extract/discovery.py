"""Discover every table of a legacy database, mapped or not.

Discovery never starts from the known schema: a TS24 site can hold import,
temp and vendor tables, some without a primary key, and each must be backed
up and purged like the rest.

Example::

    tables = discover_tables(engine)
    [t.name for t in tables if not t.primary_key]   # ['IMPORT_TAM']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ts24_migrate.core.legacy.schema import MAPPED_TABLES, SYSTEM_TABLES, WATERMARK_COLUMNS
from ts24_migrate.core.legacy.schema import metadata as ts24_schema
from ts24_migrate.core.rows.arrow_types import ColumnPlan, kind_of


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_name: str
    nullable: bool


@dataclass(frozen=True)
class TableInfo:
    name: str
    schema: str | None
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...]
    table: sa.Table  # reflected, for building SQL with the dialect's quoting

    @property
    def role(self) -> str:
        """mapped (loaded into the new system), system (backed up, never loaded) or unmapped."""
        if self.name.upper() in MAPPED_TABLES:
            return "mapped"
        if self.name.upper() in SYSTEM_TABLES:
            return "system"
        return "unmapped"

    @property
    def watermark_column(self) -> str | None:
        column = WATERMARK_COLUMNS.get(self.name.upper())
        return column if column and column in self.column_names else None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def columns_not_in_schema(self) -> tuple[str, ...]:
        """Columns of a mapped table that the TS24 schema does not have (a server's own additions):
        backed up like the rest, never loaded."""
        known = ts24_schema.tables.get(self.name.upper()) if self.role == "mapped" else None
        if known is None:
            return ()
        names = {c.name.upper() for c in known.columns}
        return tuple(name for name in self.column_names if name.upper() not in names)


def discover_tables(bind: Engine | Connection, schema: str | None = None) -> list[TableInfo]:
    """Every base table in the database (views excluded), sorted by name."""
    inspector = sa.inspect(bind)
    metadata = sa.MetaData()
    found: list[TableInfo] = []
    for name in sorted(inspector.get_table_names(schema=schema)):
        if name.startswith("sqlite_") and bind.dialect.name == "sqlite":
            continue  # SQLite's own bookkeeping, not site data (elsewhere, a name like any other)
        table = sa.Table(name, metadata, schema=schema, autoload_with=bind, listeners=_reflection_fixes(bind))
        columns = tuple(ColumnInfo(c.name, _type_name(c.type), bool(c.nullable)) for c in table.columns)
        primary_key = tuple(c.name for c in table.primary_key.columns)
        found.append(TableInfo(name, schema, columns, primary_key, table))
    return found


def _reflection_fixes(bind: Engine | Connection) -> list[tuple[str, Any]]:
    """Corrections to what SQLAlchemy reflects, per dialect.

    MySQL/MariaDB: SQLAlchemy reads column names out of SHOW CREATE TABLE without undoing the
    doubling of backticks (a column `x``y` comes back as 'x``y', which names no column). The
    primary key is matched to columns by the name as reflected, so fixing the name here keeps it.
    """
    if bind.dialect.name not in ("mysql", "mariadb"):
        return []

    def unescape_backticks(inspector: Any, table: sa.Table, column_info: dict[str, Any]) -> None:
        column_info["name"] = column_info["name"].replace("``", "`")

    return [("column_reflect", unescape_backticks)]


def _type_name(type_: sa.types.TypeEngine[Any]) -> str:
    try:
        return str(type_.compile())
    except Exception:
        return type(type_).__name__.upper()


def column_plan(table: TableInfo) -> list[ColumnPlan]:
    """How each column of a discovered table is kept in Arrow (the types themselves live in core.rows)."""
    plans = []
    for info, column in zip(table.columns, table.table.columns):
        kind, arrow_type = kind_of(column.type)
        plans.append(ColumnPlan(info.name, info.type_name, info.nullable, kind, arrow_type))
    return plans
