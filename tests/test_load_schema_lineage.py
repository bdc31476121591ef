"""Schema step 4 on a target loaded before it: mig_lineage merged into mig_crosswalk, nothing lost.

The target is loaded with today's code, then given the shape schema steps 1-3 left
(the lineage in a table of its own, the crosswalk without it, at version 3), with the
odd rows a long-lived target can hold; upgrading it must give back exactly what a
load of today writes, keep what it cannot carry over, and let the next load go on.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from test_load_support import dossier_row, file_row, merge, open_target, rows_of, snapshot, target_url, unit_row

from load import bookkeeping as bk
from load import target_schema as ts
from load.lineage_merge import SUPERSEDED_TABLE, lineage_v3
from load.schema_version import LATEST_VERSION, prepare_target, schema_version_of

__all__ = ["target_url"]  # a fixture, used by name

_V3_COLUMNS = ("target_table", "target_key", "site_id", "legacy_table", "legacy_key", *bk.LINEAGE_COLUMNS)


def _loaded(target: sa.Engine) -> None:
    merge(target, "units", [unit_row(f"DV00{i}") for i in range(1, 6)], legacy_table="DM_DONVI")
    merge(target, "dossiers", [dossier_row(1), dossier_row(2)], legacy_table="HO_SO")
    merge(target, "dossier_files", [file_row(10, 1), file_row(11, 2)], legacy_table="HO_SO_TEP")


def _as_version_3(target: sa.Engine) -> None:
    """The shape schema steps 1-3 gave a target: lineage in mig_lineage, a crosswalk without it."""
    c = bk.crosswalk
    with target.begin() as conn:
        lineage_v3.create(conn)
        conn.execute(lineage_v3.insert().from_select(_V3_COLUMNS, sa.select(*[c.c[n] for n in _V3_COLUMNS])))
        conn.execute(sa.text("DROP INDEX ux_mig_crosswalk_target_row"))
        for name in bk.LINEAGE_COLUMNS:
            conn.execute(sa.text(f"ALTER TABLE mig_crosswalk DROP COLUMN {name}"))
        conn.execute(bk.schema_version.delete().where(bk.schema_version.c.version == 4))


def _target_key(target: sa.Engine, legacy_key: str) -> str:
    (row,) = rows_of(target, bk.crosswalk, bk.crosswalk.c.legacy_key == legacy_key)
    return row.target_key


@pytest.mark.parametrize("superseded", [True, False], ids=["with-superseded-lineage", "all-carried-over"])
def test_an_old_target_gets_one_bookkeeping_row_per_loaded_row(target_url, superseded):
    target = open_target(target_url)
    _loaded(target)
    expected = snapshot(target)
    dv002, dv004 = _target_key(target, "DV002"), _target_key(target, "DV004")
    _as_version_3(target)
    assert schema_version_of(target) == 3
    old_crosswalk = sa.Table("mig_crosswalk", sa.MetaData(), autoload_with=target)
    with target.begin() as conn:
        # The crosswalk row of DV002 was lost; its lineage says where it went.
        conn.execute(old_crosswalk.delete().where(old_crosswalk.c.legacy_key == "DV002"))
        # DV099 once held DV004's row, which DV004 took over since: a stale claim, never counted loaded.
        conn.execute(
            old_crosswalk.insert().values(
                site_id="s1", legacy_table="DM_DONVI", legacy_key="DV099", target_table="units", target_key=dv004
            )
        )
        if superseded:  # DV003 was written to a row the new system deleted, then written again
            conn.execute(
                lineage_v3.insert().values(
                    target_table="units",
                    target_key="999",
                    site_id="s1",
                    legacy_table="DM_DONVI",
                    legacy_key="DV003",
                    run_id="old-run",
                    legacy_row_hash="0" * 64,
                    row_md5="0" * 32,
                    loaded_at=dt.datetime(2025, 6, 1),
                )
            )

    assert prepare_target(target) == [LATEST_VERSION]

    assert snapshot(target) == expected  # every loaded row's lineage, the lost crosswalk row back, DV099 gone
    assert _target_key(target, "DV002") == dv002
    inspector = sa.inspect(target)
    tables = set(inspector.get_table_names())
    assert lineage_v3.name not in tables
    indexes = {i["name"]: i for i in inspector.get_indexes(bk.crosswalk.name)}
    assert indexes["ux_mig_crosswalk_target_row"]["unique"]
    if superseded:
        with target.connect() as conn:
            kept = conn.execute(sa.text(f"SELECT legacy_key, target_key, run_id FROM {SUPERSEDED_TABLE}")).all()
        assert [tuple(r) for r in kept] == [("DV003", "999", "old-run")]
    else:
        assert SUPERSEDED_TABLE not in tables

    # The next load goes on where the old one stopped: a re-run changes nothing, a new row comes in.
    _loaded(target)
    assert snapshot(target) == expected
    outcome, _ = merge(target, "units", [unit_row("DV006")], legacy_table="DM_DONVI")
    assert outcome.inserted == 1 and len(rows_of(target, bk.crosswalk, bk.crosswalk.c.target_table == "units")) == 6
    assert len(rows_of(target, ts.units)) == 6
    target.dispose()
