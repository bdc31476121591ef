"""Views, triggers, stored procedures and functions, sequences: every object that is not a table.

A TS24 server holds more than tables: a view over in-flight dossiers, a
trigger that guards the access log, a procedure a report calls. None of them
holds rows of its own (a view's rows derive from tables, which are backed up
anyway), but each must be known: the backup keeps its definition, the reports
list it, and the purge must drop it and prove it was the object backed up.
So each object gets a fingerprint: the SHA-256 of its definition text, which
the purge recomputes from the live server (`live_object_fingerprints`).

Where the definitions come from:

- SQLite: ``sqlite_master`` (views and triggers; SQLite has no procedures or
  sequences). The definition is the CREATE statement SQLite keeps.
- MariaDB/MySQL: ``information_schema`` (VIEWS, TRIGGERS, ROUTINES with
  PARAMETERS, EVENTS) and, for MariaDB 10.3+ sequences (TABLES with
  TABLE_TYPE 'SEQUENCE'), the sequence's own row. The definition is a CREATE
  statement composed from those columns (the server's text, in a fixed shape).
- SQL Server: ``sys.objects`` with ``sys.sql_modules`` (views, triggers,
  procedures, functions), ``sys.triggers`` for database-level DDL triggers,
  and ``sys.sequences``.

A definition the server does not show (MariaDB without the SHOW ROUTINE
privilege, SQL Server WITH ENCRYPTION or without VIEW DEFINITION) is kept as
None: the object is still listed, with no fingerprint and a note, so it is
never silently left out.

Definitions are code written by the vendor or an administrator and may hold
literals (a unit code, even a password for a linked server): the backup keeps
them in an encrypted part, never in the clear-text manifest, and the reports
show names and fingerprints only.

Example::

    with legacy.connect() as conn:
        found = discover_objects(conn)
    [(o.kind, o.name, o.fingerprint) for o in found.objects]
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection

# In the order they are listed (and recreated: views before the triggers that may refer to them).
OBJECT_KINDS = ("view", "trigger", "procedure", "function", "sequence", "event")
OBJECTS_KEY = "@objects"  # the objects' entry beside table names (backup parts folder, figures)


@dataclass(frozen=True)
class SchemaObject:
    kind: str  # one of OBJECT_KINDS (or the server's own word for a kind we do not know)
    name: str
    schema: str | None  # None: the database's default schema, like discovered tables
    table: str | None  # the table a trigger fires on
    definition: str | None  # None: the server did not show it to this account

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 of the definition text (UTF-8), or None when the definition is not readable."""
        if self.definition is None:
            return None
        return hashlib.sha256(self.definition.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def key(self) -> str:
        """'view:V_HO_SO' (or 'view:dbo.V_HO_SO'): unique per object, stable across runs."""
        return f"{self.kind}:{self.schema + '.' if self.schema else ''}{self.name}"

    def listing(self) -> dict[str, Any]:
        """What reports and the manifest show: everything but the definition text."""
        return {
            "kind": self.kind,
            "name": self.name,
            "schema": self.schema,
            "table": self.table,
            "fingerprint": self.fingerprint,
            "definition_bytes": (
                len(self.definition.encode("utf-8", "surrogatepass")) if self.definition is not None else None
            ),
            "note": None if self.definition is not None else UNREADABLE_NOTE,
        }


UNREADABLE_NOTE = (
    "the server did not show this definition to the account used (privileges, or an "
    "encrypted module): listed, but without a fingerprint"
)


@dataclass
class ObjectDiscovery:
    objects: list[SchemaObject] = field(default_factory=list)
    note: str | None = None  # set when a kind of object could not be looked for

    def listing(self) -> list[dict[str, Any]]:
        return [o.listing() for o in self.objects]

    def counts(self) -> dict[str, int]:
        return object_counts(self.listing())

    def fingerprints(self) -> dict[str, str | None]:
        return {o.key: o.fingerprint for o in self.objects}


def object_counts(listing: Iterable[dict[str, Any]]) -> dict[str, int]:
    """{kind: n} in OBJECT_KINDS order, every known kind present (0 when none)."""
    counts = {kind: 0 for kind in OBJECT_KINDS}
    for entry in listing:
        counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
    return counts


def listing_key(entry: dict[str, Any]) -> str:
    """SchemaObject.key of a listing entry."""
    return f"{entry['kind']}:{entry['schema'] + '.' if entry.get('schema') else ''}{entry['name']}"


def _ordered(objects: Iterable[SchemaObject]) -> list[SchemaObject]:
    rank = {kind: i for i, kind in enumerate(OBJECT_KINDS)}
    return sorted(objects, key=lambda o: (rank.get(o.kind, len(rank)), o.kind, o.schema or "", o.name))


def discover_objects(conn: Connection) -> ObjectDiscovery:
    """Every view, trigger, procedure, function, sequence (and MariaDB event) of the database."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return ObjectDiscovery(_ordered(_sqlite_objects(conn)))
    if dialect in ("mysql", "mariadb"):
        return ObjectDiscovery(_ordered(_mariadb_objects(conn)))
    if dialect == "mssql":
        return ObjectDiscovery(_ordered(_mssql_objects(conn)))
    return ObjectDiscovery(
        [],
        note=f"views, triggers, procedures and sequences are not looked for on "
        f"{dialect} (not a TS24 legacy engine): none are listed",
    )


def live_object_fingerprints(conn: Connection) -> dict[str, str | None]:
    """{object key: fingerprint} of the live database: what the purge compares with a backup."""
    return discover_objects(conn).fingerprints()


# -- SQLite -----------------------------------------------------------------------------------

SQLITE_MASTER = sa.table("sqlite_master", sa.column("type"), sa.column("name"), sa.column("tbl_name"), sa.column("sql"))


def sqlite_objects_query() -> sa.Select[*tuple[Any, ...]]:
    m = SQLITE_MASTER.c
    return (
        sa.select(m.type, m.name, m.tbl_name, m.sql)
        .where(m.type.in_(("view", "trigger")), ~m.name.like("sqlite\\_%", escape="\\"))
        .order_by(m.type, m.name)
    )


def _sqlite_objects(conn: Connection) -> list[SchemaObject]:
    return [
        SchemaObject(kind, name, None, table if kind == "trigger" else None, sql)
        for kind, name, table, sql in conn.execute(sqlite_objects_query())
    ]


# -- MariaDB / MySQL --------------------------------------------------------------------------


def _information_schema(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), schema="information_schema")


IS_VIEWS = _information_schema("VIEWS", "TABLE_SCHEMA", "TABLE_NAME", "VIEW_DEFINITION", "CHECK_OPTION")
IS_TRIGGERS = _information_schema(
    "TRIGGERS",
    "TRIGGER_SCHEMA",
    "TRIGGER_NAME",
    "EVENT_MANIPULATION",
    "EVENT_OBJECT_TABLE",
    "ACTION_TIMING",
    "ACTION_ORIENTATION",
    "ACTION_ORDER",
    "ACTION_STATEMENT",
)
IS_ROUTINES = _information_schema(
    "ROUTINES",
    "ROUTINE_SCHEMA",
    "ROUTINE_NAME",
    "ROUTINE_TYPE",
    "DTD_IDENTIFIER",
    "ROUTINE_DEFINITION",
    "IS_DETERMINISTIC",
    "SQL_DATA_ACCESS",
    "SECURITY_TYPE",
)
IS_PARAMETERS = _information_schema(
    "PARAMETERS",
    "SPECIFIC_SCHEMA",
    "SPECIFIC_NAME",
    "ROUTINE_TYPE",
    "ORDINAL_POSITION",
    "PARAMETER_MODE",
    "PARAMETER_NAME",
    "DTD_IDENTIFIER",
)
IS_EVENTS = _information_schema(
    "EVENTS",
    "EVENT_SCHEMA",
    "EVENT_NAME",
    "EVENT_DEFINITION",
    "EVENT_TYPE",
    "EXECUTE_AT",
    "INTERVAL_VALUE",
    "INTERVAL_FIELD",
    "STATUS",
)
IS_TABLES = _information_schema("TABLES", "TABLE_SCHEMA", "TABLE_NAME", "TABLE_TYPE")
SEQUENCE_COLUMNS = ("start_value", "minimum_value", "maximum_value", "increment", "cache_size", "cycle_option")


def mariadb_queries() -> dict[str, sa.Select[*tuple[Any, ...]]]:
    """The information_schema reads, one per kind, all limited to the connection's database."""
    here = sa.func.database()
    return {
        "view": sa.select(IS_VIEWS.c.TABLE_NAME, IS_VIEWS.c.VIEW_DEFINITION, IS_VIEWS.c.CHECK_OPTION).where(
            IS_VIEWS.c.TABLE_SCHEMA == here
        ),
        "trigger": sa.select(
            IS_TRIGGERS.c.TRIGGER_NAME,
            IS_TRIGGERS.c.ACTION_TIMING,
            IS_TRIGGERS.c.EVENT_MANIPULATION,
            IS_TRIGGERS.c.EVENT_OBJECT_TABLE,
            IS_TRIGGERS.c.ACTION_ORIENTATION,
            IS_TRIGGERS.c.ACTION_STATEMENT,
        ).where(IS_TRIGGERS.c.TRIGGER_SCHEMA == here),
        "routine": sa.select(
            IS_ROUTINES.c.ROUTINE_NAME,
            IS_ROUTINES.c.ROUTINE_TYPE,
            IS_ROUTINES.c.DTD_IDENTIFIER,
            IS_ROUTINES.c.ROUTINE_DEFINITION,
            IS_ROUTINES.c.IS_DETERMINISTIC,
            IS_ROUTINES.c.SQL_DATA_ACCESS,
            IS_ROUTINES.c.SECURITY_TYPE,
        ).where(IS_ROUTINES.c.ROUTINE_SCHEMA == here),
        "parameter": sa.select(
            IS_PARAMETERS.c.SPECIFIC_NAME,
            IS_PARAMETERS.c.ROUTINE_TYPE,
            IS_PARAMETERS.c.ORDINAL_POSITION,
            IS_PARAMETERS.c.PARAMETER_MODE,
            IS_PARAMETERS.c.PARAMETER_NAME,
            IS_PARAMETERS.c.DTD_IDENTIFIER,
        )
        .where(IS_PARAMETERS.c.SPECIFIC_SCHEMA == here, IS_PARAMETERS.c.ORDINAL_POSITION > 0)
        .order_by(IS_PARAMETERS.c.SPECIFIC_NAME, IS_PARAMETERS.c.ORDINAL_POSITION),
        "event": sa.select(
            IS_EVENTS.c.EVENT_NAME,
            IS_EVENTS.c.EVENT_TYPE,
            IS_EVENTS.c.EXECUTE_AT,
            IS_EVENTS.c.INTERVAL_VALUE,
            IS_EVENTS.c.INTERVAL_FIELD,
            IS_EVENTS.c.STATUS,
            IS_EVENTS.c.EVENT_DEFINITION,
        ).where(IS_EVENTS.c.EVENT_SCHEMA == here),
        "sequence": sa.select(IS_TABLES.c.TABLE_NAME).where(
            IS_TABLES.c.TABLE_SCHEMA == here, IS_TABLES.c.TABLE_TYPE == "SEQUENCE"
        ),
    }


def sequence_query(name: str) -> sa.Select[*tuple[Any, ...]]:
    """A MariaDB sequence reads as a one-row table of its settings (quoted by the dialect)."""
    sequence = sa.table(name, *(sa.column(c) for c in SEQUENCE_COLUMNS))
    return sa.select(*sequence.c)


def _mariadb_objects(conn: Connection) -> list[SchemaObject]:
    q = conn.dialect.identifier_preparer.quote
    queries = mariadb_queries()
    found: list[SchemaObject] = []
    for name, body, check in conn.execute(queries["view"]):
        text = (
            None
            if body is None
            else f"CREATE VIEW {q(name)} AS {body}"
            + (f" WITH {check} CHECK OPTION" if check and check != "NONE" else "")
        )
        found.append(SchemaObject("view", name, None, None, text))
    for name, timing, event, table, orientation, body in conn.execute(queries["trigger"]):
        text = (
            None
            if body is None
            else f"CREATE TRIGGER {q(name)} {timing} {event} ON {q(table)} FOR EACH {orientation} {body}"
        )
        found.append(SchemaObject("trigger", name, None, table, text))
    parameters: dict[tuple[str, str], list[str]] = {}
    for routine, routine_type, _position, mode, parameter, type_name in conn.execute(queries["parameter"]):
        declared = " ".join(
            p for p in (mode if routine_type == "PROCEDURE" else None, q(parameter or ""), type_name) if p
        )
        parameters.setdefault((routine_type, routine), []).append(declared)
    for name, routine_type, returns, body, deterministic, access, security in conn.execute(queries["routine"]):
        kind = {"PROCEDURE": "procedure", "FUNCTION": "function"}.get(routine_type, str(routine_type).lower())
        signature = ", ".join(parameters.get((routine_type, name), []))
        text = (
            None
            if body is None
            else (
                f"CREATE {routine_type} {q(name)}({signature})"
                + (f" RETURNS {returns}" if returns else "")
                + f"{' DETERMINISTIC' if deterministic == 'YES' else ''} {access} SQL SECURITY {security} {body}"
            )
        )
        found.append(SchemaObject(kind, name, None, None, text))
    try:
        events = list(conn.execute(queries["event"]))
    except sa.exc.DBAPIError:  # MySQL forks without the event scheduler's table: nothing to list
        events = []
    for name, event_type, at, every, unit, status, body in events:
        when = f"AT '{at}'" if event_type == "ONE TIME" else f"EVERY {every} {unit}"
        text = None if body is None else f"CREATE EVENT {q(name)} ON SCHEDULE {when} {status} DO {body}"
        found.append(SchemaObject("event", name, None, None, text))
    for (name,) in conn.execute(queries["sequence"]):
        row = conn.execute(sequence_query(name)).one()
        found.append(SchemaObject("sequence", name, None, None, mariadb_sequence_definition(q(name), row)))
    return found


def mariadb_sequence_definition(quoted_name: str, row: Any) -> str:
    start, low, high, step, cache, cycle = row
    return (
        f"CREATE SEQUENCE {quoted_name} START WITH {start} MINVALUE {low} MAXVALUE {high} "
        f"INCREMENT BY {step} CACHE {cache} {'CYCLE' if cycle else 'NOCYCLE'}"
    )


# -- SQL Server ------------------------------------------------------------------------------


def _sys(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), schema="sys")


SYS_OBJECTS = _sys("objects", "object_id", "name", "schema_id", "type", "parent_object_id", "is_ms_shipped")
SYS_SQL_MODULES = _sys("sql_modules", "object_id", "definition")
SYS_SCHEMAS = _sys("schemas", "schema_id", "name")
SYS_TRIGGERS = _sys("triggers", "object_id", "name", "parent_class", "is_ms_shipped")
SYS_SEQUENCES = _sys(
    "sequences",
    "object_id",
    "name",
    "schema_id",
    "user_type_id",
    "start_value",
    "increment",
    "minimum_value",
    "maximum_value",
    "is_cycling",
    "is_cached",
    "cache_size",
)
SYS_TYPES = _sys("types", "user_type_id", "name")
# sys.objects.type -> kind (the codes are CHAR(2), padded with a space).
MSSQL_TYPES = {
    "V": "view",
    "TR": "trigger",
    "P": "procedure",
    "PC": "procedure",
    "FN": "function",
    "IF": "function",
    "TF": "function",
    "FS": "function",
    "FT": "function",
}


def mssql_queries() -> dict[str, sa.Select[*tuple[Any, ...]]]:
    o, m, s = SYS_OBJECTS, SYS_SQL_MODULES, SYS_SCHEMAS
    parent = SYS_OBJECTS.alias("parent")
    modules = (
        sa.select(s.c.name.label("schema_name"), o.c.name, o.c.type, parent.c.name.label("parent_name"), m.c.definition)
        .select_from(
            o.join(s, s.c.schema_id == o.c.schema_id)
            .outerjoin(m, m.c.object_id == o.c.object_id)
            .outerjoin(parent, parent.c.object_id == o.c.parent_object_id)
        )
        .where(o.c.type.in_(sorted(MSSQL_TYPES)), o.c.is_ms_shipped == 0)
    )
    t = SYS_TRIGGERS
    database_triggers = (
        sa.select(t.c.name, m.c.definition)
        .select_from(t.outerjoin(m, m.c.object_id == t.c.object_id))
        .where(t.c.parent_class == 0, t.c.is_ms_shipped == 0)
    )
    q, ty = SYS_SEQUENCES, SYS_TYPES
    sequences = sa.select(
        s.c.name.label("schema_name"),
        q.c.name,
        ty.c.name.label("type_name"),
        q.c.start_value,
        q.c.increment,
        q.c.minimum_value,
        q.c.maximum_value,
        q.c.is_cycling,
        q.c.is_cached,
        q.c.cache_size,
    ).select_from(q.join(s, s.c.schema_id == q.c.schema_id).join(ty, ty.c.user_type_id == q.c.user_type_id))
    return {"modules": modules, "database_triggers": database_triggers, "sequences": sequences}


def mssql_module(schema: str, name: str, type_code: str, parent: str | None, definition: str | None) -> SchemaObject:
    kind = MSSQL_TYPES.get(type_code.strip(), type_code.strip().lower())
    return SchemaObject(kind, name, schema, parent if kind == "trigger" else None, definition)


def mssql_sequence_definition(
    schema: str,
    name: str,
    type_name: str,
    start: Any,
    step: Any,
    low: Any,
    high: Any,
    cycling: bool,
    cached: bool,
    cache: Any,
) -> str:
    caching = "NO CACHE" if not cached else f"CACHE {cache}" if cache is not None else "CACHE"
    return (
        f"CREATE SEQUENCE [{schema}].[{name}] AS {type_name} START WITH {start} INCREMENT BY {step} "
        f"MINVALUE {low} MAXVALUE {high} {'CYCLE' if cycling else 'NO CYCLE'} {caching}"
    )


def _mssql_objects(conn: Connection) -> list[SchemaObject]:
    queries = mssql_queries()
    found = [mssql_module(*row) for row in conn.execute(queries["modules"])]
    found += [
        SchemaObject("trigger", name, None, None, definition)
        for name, definition in conn.execute(queries["database_triggers"])
    ]
    for schema, name, *settings in conn.execute(queries["sequences"]):
        found.append(SchemaObject("sequence", name, schema, None, mssql_sequence_definition(schema, name, *settings)))
    return found


# -- the backup's objects part ---------------------------------------------------------------

PART_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("schema", pa.string()),
        pa.field("name", pa.string(), nullable=False),
        pa.field("table", pa.string()),
        pa.field("definition", pa.large_binary()),  # UTF-8 bytes: any text the server returned survives
        pa.field("fingerprint", pa.string()),
    ]
)


def objects_parquet(objects: list[SchemaObject]) -> bytes:
    """The plaintext of the backup's objects part: one row per object, its definition included."""
    columns = {
        "kind": [o.kind for o in objects],
        "schema": [o.schema for o in objects],
        "name": [o.name for o in objects],
        "table": [o.table for o in objects],
        "definition": [
            None if o.definition is None else o.definition.encode("utf-8", "surrogatepass") for o in objects
        ],
        "fingerprint": [o.fingerprint for o in objects],
    }
    table = pa.Table.from_pydict(columns, schema=PART_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def read_objects_part(data: bytes) -> list[SchemaObject]:
    """The objects of a decrypted objects part (definitions included)."""
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    return [
        SchemaObject(
            r["kind"],
            r["name"],
            r["schema"],
            r["table"],
            None if r["definition"] is None else r["definition"].decode("utf-8", "surrogatepass"),
        )
        for r in rows
    ]
