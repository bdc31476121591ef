"""Views, triggers, procedures, functions and sequences of the legacy database: what the purge drops
besides tables, each with the SHA-256 of its definition.

Interim: `extract.objects` (views/triggers discovery, being added to the
extract stage) has the same interface (`discover_objects(conn).objects`, each
with kind, name, schema, table, definition, fingerprint, key). When it lands,
this module becomes ``from extract.objects import discover_objects`` and the
backup manifest's ``objects`` record is what the purge gate compares with
(`chain_object_fingerprints` already reads it).

Example::

    with legacy.connect() as conn:
        [(o.key, o.fingerprint) for o in discover_objects(conn).objects]   # [('view:V_HO_SO', '3f1c...')]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

OBJECT_KINDS = ("view", "trigger", "procedure", "function", "sequence", "event")


@dataclass(frozen=True)
class SchemaObject:
    kind: str
    name: str
    schema: str | None
    table: str | None  # the table a trigger fires on
    definition: str | None  # None: the server did not show it to this account

    @property
    def fingerprint(self) -> str | None:
        if self.definition is None:
            return None
        return hashlib.sha256(self.definition.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.schema + '.' if self.schema else ''}{self.name}"


@dataclass
class ObjectDiscovery:
    objects: list[SchemaObject] = field(default_factory=list)
    note: str | None = None

    def fingerprints(self) -> dict[str, str | None]:
        return {o.key: o.fingerprint for o in self.objects}


def _table(name: str, *columns: str, schema: str | None = None) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), schema=schema)


SQLITE_MASTER = _table("sqlite_master", "type", "name", "tbl_name", "sql")
IS_VIEWS = _table("VIEWS", "TABLE_SCHEMA", "TABLE_NAME", "VIEW_DEFINITION", schema="information_schema")
IS_TRIGGERS = _table("TRIGGERS", "TRIGGER_SCHEMA", "TRIGGER_NAME", "EVENT_OBJECT_TABLE", "ACTION_TIMING",
                     "EVENT_MANIPULATION", "ACTION_STATEMENT", schema="information_schema")
IS_ROUTINES = _table("ROUTINES", "ROUTINE_SCHEMA", "ROUTINE_NAME", "ROUTINE_TYPE", "ROUTINE_DEFINITION",
                     schema="information_schema")
IS_TABLES = _table("TABLES", "TABLE_SCHEMA", "TABLE_NAME", "TABLE_TYPE", schema="information_schema")
IS_EVENTS = _table("EVENTS", "EVENT_SCHEMA", "EVENT_NAME", "EVENT_DEFINITION", schema="information_schema")
SYS_OBJECTS = _table("objects", "object_id", "name", "schema_id", "type", "parent_object_id", "is_ms_shipped",
                     schema="sys")
SYS_MODULES = _table("sql_modules", "object_id", "definition", schema="sys")
SYS_SCHEMAS = _table("schemas", "schema_id", "name", schema="sys")
SYS_SEQUENCES = _table("sequences", "name", "schema_id", "start_value", "increment", schema="sys")
MSSQL_KINDS = {"V": "view", "TR": "trigger", "P": "procedure", "PC": "procedure", "FN": "function",
               "IF": "function", "TF": "function", "FS": "function", "FT": "function"}


def discover_objects(conn: Connection) -> ObjectDiscovery:
    """Every view, trigger, procedure, function, sequence (and MariaDB event) of the connection's database."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        m = SQLITE_MASTER.c
        rows = conn.execute(sa.select(m.type, m.name, m.tbl_name, m.sql).where(
            m.type.in_(("view", "trigger")), ~m.name.like("sqlite\\_%", escape="\\")))
        found = [SchemaObject(kind, name, None, table if kind == "trigger" else None, sql)
                 for kind, name, table, sql in rows]
    elif dialect in ("mysql", "mariadb"):
        found = _mariadb(conn)
    elif dialect == "mssql":
        found = _mssql(conn)
    else:
        return ObjectDiscovery([], note=f"objects other than tables are not looked for on {dialect}")
    rank = {kind: i for i, kind in enumerate(OBJECT_KINDS)}
    return ObjectDiscovery(sorted(found, key=lambda o: (rank.get(o.kind, 99), o.schema or "", o.name)))


def _mariadb(conn: Connection) -> list[SchemaObject]:
    here = sa.func.database()
    found = [SchemaObject("view", name, None, None, body) for name, body in conn.execute(
        sa.select(IS_VIEWS.c.TABLE_NAME, IS_VIEWS.c.VIEW_DEFINITION).where(IS_VIEWS.c.TABLE_SCHEMA == here))]
    t = IS_TRIGGERS.c
    for name, table, timing, event, body in conn.execute(sa.select(
            t.TRIGGER_NAME, t.EVENT_OBJECT_TABLE, t.ACTION_TIMING, t.EVENT_MANIPULATION, t.ACTION_STATEMENT)
            .where(t.TRIGGER_SCHEMA == here)):
        found.append(SchemaObject("trigger", name, None, table, None if body is None else f"{timing} {event} {body}"))
    r = IS_ROUTINES.c
    for name, kind, body in conn.execute(sa.select(r.ROUTINE_NAME, r.ROUTINE_TYPE, r.ROUTINE_DEFINITION)
                                         .where(r.ROUTINE_SCHEMA == here)):
        found.append(SchemaObject(str(kind).lower(), name, None, None, body))
    for (name,) in conn.execute(sa.select(IS_TABLES.c.TABLE_NAME).where(
            IS_TABLES.c.TABLE_SCHEMA == here, IS_TABLES.c.TABLE_TYPE == "SEQUENCE")):
        found.append(SchemaObject("sequence", name, None, None, f"SEQUENCE {name}"))
    try:
        events = list(conn.execute(sa.select(IS_EVENTS.c.EVENT_NAME, IS_EVENTS.c.EVENT_DEFINITION)
                                   .where(IS_EVENTS.c.EVENT_SCHEMA == here)))
    except sa.exc.DBAPIError:
        events = []
    found += [SchemaObject("event", name, None, None, body) for name, body in events]
    return found


def _mssql(conn: Connection) -> list[SchemaObject]:
    o, m, s = SYS_OBJECTS, SYS_MODULES, SYS_SCHEMAS
    parent = SYS_OBJECTS.alias("parent")
    rows = conn.execute(
        sa.select(s.c.name, o.c.name, o.c.type, parent.c.name, m.c.definition)
        .select_from(o.join(s, s.c.schema_id == o.c.schema_id).outerjoin(m, m.c.object_id == o.c.object_id)
                     .outerjoin(parent, parent.c.object_id == o.c.parent_object_id))
        .where(o.c.type.in_(sorted(MSSQL_KINDS)), o.c.is_ms_shipped == 0))
    found = []
    for schema, name, code, parent_name, definition in rows:
        kind = MSSQL_KINDS.get(str(code).strip(), str(code).strip().lower())
        found.append(SchemaObject(kind, name, schema, parent_name if kind == "trigger" else None, definition))
    q = SYS_SEQUENCES
    for schema, name, start, step in conn.execute(
            sa.select(s.c.name, q.c.name, q.c.start_value, q.c.increment)
            .select_from(q.join(s, s.c.schema_id == q.c.schema_id))):
        found.append(SchemaObject("sequence", name, schema, None, f"SEQUENCE START {start} INCREMENT {step}"))
    return found


def chain_object_fingerprints(manifests: Sequence[Any]) -> dict[str, str | None] | None:
    """{object key: fingerprint} from the newest manifest of the chain that records objects; None when
    no manifest does (backups made before object definitions were backed up)."""
    for manifest in reversed(list(manifests)):
        record = manifest.data.get("objects")
        if record is not None:
            return {f"{i['kind']}:{i['schema'] + '.' if i.get('schema') else ''}{i['name']}": i.get("fingerprint")
                    for i in record.get("items", [])}
    return None
