"""Creating and upgrading the target schema (business tables and bookkeeping)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_load_support import target_url

from load import bookkeeping as bk
from load import target_schema as ts
from load.schema_version import LATEST_VERSION, SCHEMA_STEPS, SchemaStep, prepare_target, schema_version_of
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.errors import ConfigError
from ts24_migrate.core.secrets import Secret

__all__ = ["target_url"]  # a fixture, used by name


@pytest.fixture
def engine(target_url):
    engine = store_engine(Secret(target_url))
    yield engine
    engine.dispose()


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_a_fresh_target_gets_every_table_and_the_latest_version(engine):
    assert schema_version_of(engine) == 0
    assert prepare_target(engine) == [step.version for step in SCHEMA_STEPS]
    assert _tables(engine) >= set(ts.BUSINESS_TABLES) | set(bk.BOOKKEEPING_TABLES)
    assert schema_version_of(engine) == LATEST_VERSION
    assert prepare_target(engine) == []  # nothing left to do
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(bk.schema_version)).scalar() == len(SCHEMA_STEPS)


def test_business_tables_made_by_the_new_system_are_kept_and_bookkeeping_added(engine):
    ts.create_business_tables(engine)
    with engine.begin() as conn:
        conn.execute(
            ts.re_registrations.insert().values(
                unit_code="DV001", filed_on=sa.func.current_date(), transaction_mode="ivan"
            )
        )
    prepare_target(engine)
    assert _tables(engine) >= set(bk.BOOKKEEPING_TABLES)
    with engine.connect() as conn:
        assert conn.execute(sa.select(ts.re_registrations.c.unit_code)).scalars().all() == ["DV001"]


def test_steps_apply_once_in_order(engine):
    prepare_target(engine)

    def add_index(conn):
        conn.execute(sa.text("CREATE INDEX ix_test_rejects_reason ON mig_rejects (reason_code)"))

    steps = SCHEMA_STEPS + (SchemaStep(LATEST_VERSION + 1, "test: index rejects by reason", add_index),)
    assert prepare_target(engine, steps=steps) == [LATEST_VERSION + 1]
    assert prepare_target(engine, steps=steps) == []
    assert "ix_test_rejects_reason" in {i["name"] for i in sa.inspect(engine).get_indexes("mig_rejects")}
    # A tool that only knows the earlier steps refuses the newer database instead of writing into it.
    with pytest.raises(ConfigError, match=f"version {LATEST_VERSION + 1}, newer than"):
        prepare_target(engine)


def test_a_failing_step_leaves_the_version_where_it_was(engine):
    prepare_target(engine)

    def broken(conn):
        conn.execute(sa.text("CREATE TABLE mig_half_done (x INTEGER)"))
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        prepare_target(engine, steps=SCHEMA_STEPS + (SchemaStep(LATEST_VERSION + 1, "broken", broken),))
    assert schema_version_of(engine) == LATEST_VERSION
    assert "mig_half_done" not in _tables(engine)
