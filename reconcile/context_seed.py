"""Give the transform, for a few carried-over rows, the memory a full migration would have had.

The transform checks rows against what it accepted before: the offices and
units a dossier names (orphans), the dossier a history row or file belongs
to, a dossier number or unit code already taken (duplicates). A full
migration learns all of it while reading every table; a carry-over reads a
few hundred rows, so it looks up only what those rows refer to, in the
target's bookkeeping:

- accepted before = loaded (crosswalk), or accepted by the transform but
  refused by the new system (rejects with a load reason code, e.g. a unit
  the portal changed after cut-over: its dossiers are not orphans);
- every lookup goes through an index (natural key, crosswalk key), so a
  carry-over costs what its rows cost, not what the site holds.

Persons are the exception: their duplicate check compares identities across
the whole table, so a batch of persons is preceded, once per run, by every
person this site loaded (streamed, crosswalk first so the business table is
reached by its key) and the persons the new system refused, transformed
again from the legacy rows (as a resumed load does).

Example::

    seeder = ContextSeeder(target_conn, ctx, "hn-01")
    seeder.before("HO_SO", rows_as_dicts)      # then transform_batch("HO_SO", batch, ctx)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from extract.discovery import TableInfo
from extract.reader import iter_table_batches
from load.bookkeeping import crosswalk, rejects
from load.reasons import LOAD_REASON_CODES
from load.target_schema import dossiers, insured_persons, offices, units
from transform import TransformContext, transform_batch

from .state import KEYS_PER_QUERY


def _code(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(values), KEYS_PER_QUERY):
        yield values[i : i + KEYS_PER_QUERY]


class ContextSeeder:
    def __init__(self, conn: Connection, ctx: TransformContext, site_id: str):
        self.conn, self.ctx, self.site_id = conn, ctx, site_id
        self.looked_up: dict[str, set[Any]] = {}
        self._offices_done = False
        self._load_rejected: dict[str, list[tuple[str, str | None, str | None]]] = {}

    # -- bookkeeping ------------------------------------------------------------------------
    def load_rejected(self, legacy_table: str) -> list[tuple[str, str | None, str | None]]:
        """(legacy key, field, value) of rows the transform accepted and the new system refused."""
        if legacy_table not in self._load_rejected:
            self._load_rejected[legacy_table] = [
                tuple(r)
                for r in self.conn.execute(
                    sa.select(rejects.c.legacy_key, rejects.c.field, rejects.c.original_value).where(
                        rejects.c.site_id == self.site_id,
                        rejects.c.legacy_table == legacy_table,
                        rejects.c.reason_code.in_(list(LOAD_REASON_CODES)),
                    )
                )
            ]
        return self._load_rejected[legacy_table]

    def _new(self, kind: str, values: Iterable[Any]) -> list[Any]:
        seen = self.looked_up.setdefault(kind, set())
        fresh = sorted({v for v in values if v is not None and v not in seen}, key=str)
        seen.update(fresh)
        return fresh

    def _held(
        self, table: sa.Table, key: sa.Column[Any], natural: sa.Column[Any], legacy_table: str, values: list[Any]
    ) -> list[tuple[Any, str]]:
        """(natural key, legacy key) of the rows this site loaded whose natural key is in `values`."""
        found = []
        target_key = key if isinstance(key.type, sa.String) else sa.cast(key, sa.String)
        # From the natural key's index to the crosswalk's target-row index: two index lookups per row.
        owner = sa.and_(crosswalk.c.target_table == table.name, crosswalk.c.target_key == target_key)
        for chunk in _chunks(values):
            found += [
                tuple(r)
                for r in self.conn.execute(
                    sa.select(natural, crosswalk.c.legacy_key)
                    .select_from(table.join(crosswalk, owner))
                    .where(
                        natural.in_(chunk),
                        crosswalk.c.site_id == self.site_id,
                        crosswalk.c.legacy_table == legacy_table,
                    )
                )
            ]
        return found

    # -- what each table needs --------------------------------------------------------------
    def offices(self) -> None:
        if self._offices_done:
            return
        self._offices_done = True
        keys = self.ctx.keys_of("DM_COQUAN_BHXH")
        for code, legacy_key in self.conn.execute(
            sa.select(offices.c.office_code, crosswalk.c.legacy_key)
            .select_from(
                offices.join(
                    crosswalk,
                    sa.and_(crosswalk.c.target_table == offices.name, crosswalk.c.target_key == offices.c.office_code),
                )
            )
            .where(crosswalk.c.site_id == self.site_id, crosswalk.c.legacy_table == "DM_COQUAN_BHXH")
        ):
            keys.setdefault(code, legacy_key)
            self.ctx.known_office_codes.add(code)
        for legacy_key, _field, _value in self.load_rejected("DM_COQUAN_BHXH"):
            code = _code(legacy_key)
            if code:
                keys.setdefault(code, legacy_key)
                self.ctx.known_office_codes.add(code)

    def units(self, codes: Iterable[str | None]) -> None:
        fresh = self._new("units", (c for c in codes))
        if not fresh:
            return
        keys = self.ctx.keys_of("DM_DONVI")
        for code, legacy_key in self._held(units, units.c.unit_id, units.c.unit_code, "DM_DONVI", fresh):
            keys.setdefault(code, legacy_key)
            self.ctx.known_unit_codes.add(code)
        wanted = set(fresh)
        for legacy_key, _field, _value in self.load_rejected("DM_DONVI"):
            code = _code(legacy_key)
            if code is not None and code in wanted:  # (None is never wanted)
                keys.setdefault(code, legacy_key)
                self.ctx.known_unit_codes.add(code)

    def dossier_ids(self, ids: Iterable[str | None]) -> None:
        fresh = self._new("dossier_ids", ids)
        if not fresh:
            return
        for chunk in _chunks(fresh):
            self.ctx.known_dossier_ids.update(
                self.conn.execute(
                    sa.select(crosswalk.c.legacy_key).where(
                        crosswalk.c.site_id == self.site_id,
                        crosswalk.c.legacy_table == "HO_SO",
                        crosswalk.c.legacy_key.in_(chunk),
                    )
                ).scalars()
            )
        wanted = set(fresh)
        self.ctx.known_dossier_ids.update(k for k, _f, _v in self.load_rejected("HO_SO") if k in wanted)

    def dossier_numbers(self, numbers: Iterable[str | None]) -> None:
        texts = [n.strip() for n in numbers if isinstance(n, str) and n.strip()]
        fresh = self._new("dossier_numbers", {*texts, *(t.upper() for t in texts)})
        if not fresh:
            return
        for number, legacy_key in self._held(dossiers, dossiers.c.dossier_id, dossiers.c.dossier_no, "HO_SO", fresh):
            self.ctx.accepted_dossier_numbers.setdefault(number.upper(), legacy_key)
            self.ctx.known_dossier_ids.add(legacy_key)
        wanted = {t.upper() for t in fresh}
        for legacy_key, field, value in self.load_rejected("HO_SO"):
            if field == "dossier_no" and isinstance(value, str) and value.upper() in wanted:
                self.ctx.accepted_dossier_numbers.setdefault(value.upper(), legacy_key)

    def persons(self, legacy: Engine, info: TableInfo, *, rows_per_frame: int = 20_000) -> None:
        """Every person the full migration would have remembered before a batch of persons."""
        if self.looked_up.get("persons"):
            return
        self.looked_up["persons"] = {True}
        p = insured_persons
        query = (
            sa.select(
                p.c.social_insurance_no,
                crosswalk.c.legacy_key,
                p.c.citizen_id,
                p.c.full_name,
                p.c.birth_date,
                p.c.birth_date_precision,
                p.c.unit_code,
            )
            .select_from(crosswalk.join(p, p.c.person_id == sa.cast(crosswalk.c.target_key, p.c.person_id.type)))
            .where(
                crosswalk.c.site_id == self.site_id,
                crosswalk.c.legacy_table == "NGUOI_LAO_DONG",
                crosswalk.c.target_table == p.name,
            )
        )
        result = self.conn.execution_options(stream_results=True, yield_per=rows_per_frame).execute(query)
        columns = list(result.keys())
        for part in result.partitions(rows_per_frame):
            self.ctx.remember_accepted(
                "NGUOI_LAO_DONG", pd.DataFrame.from_records([tuple(r) for r in part], columns=columns).astype(object)
            )
        refused = [k for k, _f, _v in self.load_rejected("NGUOI_LAO_DONG")]
        if not refused:
            return
        key = info.table.c[info.primary_key[0]]
        with legacy.connect() as source:
            for chunk in _chunks(refused):
                for batch in iter_table_batches(source, info, chunk_rows=KEYS_PER_QUERY, where=key.in_(chunk)):
                    self.units(_code(v) for v in batch.column(info.column_names.index("MA_DV")).to_pylist())
                    transform_batch("NGUOI_LAO_DONG", batch, self.ctx)  # remembers the rows it accepts

    def before(self, legacy_table: str, rows: list[dict[str, Any]]) -> None:
        """Look up what `rows` (legacy column -> value) refer to, before they are transformed."""
        name = legacy_table.upper()
        if name in ("DM_COQUAN_BHXH", "DM_DONVI", "HO_SO"):
            self.offices()
        if name == "DM_DONVI":
            self.units(_code(r.get("MA_DV")) for r in rows)
        elif name in ("HO_SO", "NGUOI_LAO_DONG"):
            self.units(_code(r.get("MA_DV")) for r in rows)
        if name == "HO_SO":
            self.dossier_numbers(r.get("SO_HO_SO") for r in rows)
            self.dossier_ids(None if r.get("ID_HO_SO") is None else str(r["ID_HO_SO"]) for r in rows)
        elif name in ("HO_SO_LICH_SU", "HO_SO_TEP"):
            self.dossier_ids(None if r.get("ID_HO_SO") is None else str(r["ID_HO_SO"]) for r in rows)
