"""The new system's foreign keys: checked as a set before the merge, per-row checks off only where allowed.

On PostgreSQL the test role is a superuser, so the load takes the replica path
(load.foreign_keys); a role made here without that right takes the per-row
path. Both must load the same rows and reject the same ones, and the target's
constraints must hold for everyone else afterwards.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL
from test_load_support import (
    AFTER,
    CUTOVER,
    demo_site,
    dossier_row,
    file_row,
    frame,
    merge,
    open_target,
    rows_of,
    snapshot,
    target,
    target_url,
)

from load import bookkeeping as bk
from load import foreign_keys, reasons
from load import target_schema as ts
from load.merge import merge_chunk
from load.site_load import load_site
from load.staging import to_stage_arrow
from load.target_map import target_spec
from load.transactions import write_transaction

__all__ = ["target", "target_url"]  # fixtures, used by name


@pytest.fixture
def pg_superuser(_pg_admin: sa.Engine) -> int:
    """The server's version number, once it is clear the test role is a superuser (or the test skips):
    the replica path and CREATE ROLE need one. The test role on the reference machine is one."""
    with _pg_admin.connect() as c:
        superuser = c.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one()
        version = c.execute(sa.text("SELECT current_setting('server_version_num')::int")).scalar_one()
    if not superuser:
        pytest.skip("the PostgreSQL test role is no superuser")
    return version


@pytest.fixture
def role_database(_pg_admin: sa.Engine, pg_superuser: int) -> Iterator[Callable[..., str]]:
    """Factory: a fresh database owned by a fresh login role that is no superuser; returns its URL.

    `granted=True` also grants the role SET ON PARAMETER session_replication_role (PostgreSQL 15+).
    """
    made: list[tuple[str, str, bool]] = []

    def make(*, granted: bool = False) -> str:
        if granted and pg_superuser < 150000:
            pytest.skip("SET ON PARAMETER needs PostgreSQL 15 or later")
        role, database = f"ts24_r_{uuid.uuid4().hex[:10]}", f"ts24_t_{uuid.uuid4().hex[:12]}"
        with _pg_admin.connect() as c:
            c.execute(sa.text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER'))
            made.append((role, database, granted))
            c.execute(sa.text(f'CREATE DATABASE "{database}" OWNER "{role}"'))
            if granted:
                c.execute(sa.text(f'GRANT SET ON PARAMETER session_replication_role TO "{role}"'))
        url = sa.engine.make_url(PG_ADMIN_URL).set(username=role, database=database)
        return url.render_as_string(hide_password=False)

    yield make
    with _pg_admin.connect() as c:
        for role, database, granted in made:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            if granted:
                c.execute(sa.text(f'REVOKE ALL ON PARAMETER session_replication_role FROM "{role}"'))
            c.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))


def _files_against_a_deleted_dossier(engine: sa.Engine) -> list:
    """Dossiers 1-3 loaded, dossier 2 then deleted by the new system; files of dossiers 1, 2, 3, 99, none.

    Returns the file chunk's outcomes (decided in SQL, then in Python)."""
    merge(engine, "dossiers", [dossier_row(1), dossier_row(2), dossier_row(3)], legacy_table="HO_SO")
    with engine.begin() as conn:
        conn.execute(ts.dossiers.delete().where(ts.dossiers.c.dossier_no == "HS-00002"))
    first, _ = merge(
        engine,
        "dossier_files",
        [file_row(10, 1), file_row(11, 2), file_row(12, 99), file_row(13, None), file_row(14, 3)],
        legacy_table="HO_SO_TEP",
    )
    second, _ = merge(  # a fresh chunk: planned in Python, no stage
        engine, "dossier_files", [file_row(20, 2), file_row(21, 3)], legacy_table="HO_SO_TEP", may_be_loaded=False
    )
    return [first, second]


def _rejects(engine: sa.Engine) -> dict[str, tuple]:
    return {r.legacy_key: (r.reason_code, r.field, r.original_value) for r in rows_of(engine, bk.rejects)}


_EXPECTED_REJECTS = {
    "11": (reasons.PARENT_NOT_LOADED, "dossier_id", "2"),  # crosswalked, but no longer in the new system
    "12": (reasons.PARENT_NOT_LOADED, "dossier_id", "99"),
    "13": (reasons.PARENT_NOT_LOADED, "dossier_id", None),
    "20": (reasons.PARENT_NOT_LOADED, "dossier_id", "2"),
}


def test_a_dossier_the_new_system_deleted_rejects_its_rows_instead_of_failing_the_chunk(request, target):
    """The set-based check sees the row gone (the per-row check used to fail the whole chunk)."""
    if target.dialect.name == "postgresql":
        request.getfixturevalue("pg_superuser")
    outcomes = _files_against_a_deleted_dossier(target)
    assert [(o.loaded, dict(o.rejects_by_reason)) for o in outcomes] == [
        (2, {reasons.PARENT_NOT_LOADED: 3}),
        (1, {reasons.PARENT_NOT_LOADED: 1}),
    ]
    assert _rejects(target) == _EXPECTED_REJECTS
    expected_path = foreign_keys.REPLICA if target.dialect.name == "postgresql" else foreign_keys.PER_ROW_SQLITE
    assert {o.foreign_key_checks for o in outcomes} == {expected_path}
    files = {r.file_name for r in rows_of(target, ts.dossier_files)}
    assert files == {"tệp 10.xml", "tệp 14.xml", "tệp 21.xml"}


def test_tables_without_a_parent_take_no_path(target):
    outcome, _ = merge(target, "dossiers", [dossier_row(1)], legacy_table="HO_SO")
    assert outcome.loaded == 1 and outcome.foreign_key_checks is None


def _foreign_keys_of(conn: sa.Connection, table: str) -> list[tuple]:
    return conn.execute(
        sa.text(
            "SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' ORDER BY conname"
        ),
        {"t": table},
    ).all()


@pytest.mark.postgres
def test_the_replica_path_leaves_the_constraints_in_force_for_everyone_else(pg_url, pg_superuser):
    engine = open_target(pg_url)
    merge(engine, "dossiers", [dossier_row(1), dossier_row(2)], legacy_table="HO_SO")
    with engine.connect() as conn:
        constraints_before = _foreign_keys_of(conn, "dossier_files")
        (dossier_1,) = conn.execute(sa.select(ts.dossiers.c.dossier_id).where(ts.dossiers.c.dossier_no == "HS-00001"))
    assert constraints_before, "the new system's foreign key must be there to begin with"
    spec = target_spec("dossier_files")
    staged, _ = to_stage_arrow(frame([file_row(10, 1), file_row(11, 7)], "dossier_files"), spec)
    other = sa.create_engine(pg_url)
    try:
        with write_transaction(engine) as conn:
            outcome = merge_chunk(
                conn,
                spec,
                staged,
                legacy_table="HO_SO_TEP",
                site_id="s1",
                run_id=str(uuid.uuid4()),
                cutover=CUTOVER,
                now=dt.datetime(2025, 8, 1),
            )
            assert outcome.foreign_key_checks == foreign_keys.REPLICA
            assert outcome.loaded == 1 and outcome.rejects_by_reason == {reasons.PARENT_NOT_LOADED: 1}
            # Set back right after the business rows: the rest of the transaction is checked as usual.
            role = conn.execute(sa.text("SELECT current_setting('session_replication_role')")).scalar_one()
            assert role == "origin"
            # The parent the chunk's row needs is locked, as the per-row check would lock it.
            with other.connect() as meanwhile:
                meanwhile.execute(sa.text("SET lock_timeout = '300ms'"))
                with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                    meanwhile.execute(ts.dossiers.delete().where(ts.dossiers.c.dossier_id == dossier_1.dossier_id))
        with engine.connect() as conn:
            assert _foreign_keys_of(conn, "dossier_files") == constraints_before
        # Another session, and this one in its next transaction, are refused a file without its dossier.
        for session in (other, engine):
            with pytest.raises(sa.exc.IntegrityError, match="foreign key"), session.begin() as conn:
                conn.execute(
                    ts.dossier_files.insert().values(dossier_id=10**9, file_name="orphan.xml", source="portal")
                )
            with pytest.raises(sa.exc.IntegrityError, match="foreign key"), session.begin() as conn:
                conn.execute(ts.dossiers.delete().where(ts.dossiers.c.dossier_id == dossier_1.dossier_id))
    finally:
        other.dispose()
        engine.dispose()


@pytest.mark.postgres
def test_a_role_that_may_not_set_replica_loads_the_same_rows_and_rejects(pg_url, role_database):
    superuser, ordinary = open_target(pg_url), open_target(role_database())
    try:
        checked = [_files_against_a_deleted_dossier(engine) for engine in (superuser, ordinary)]
        assert [{o.foreign_key_checks for o in outcomes} for outcomes in checked] == [
            {foreign_keys.REPLICA},
            {foreign_keys.PER_ROW_NOT_PERMITTED},
        ]
        assert snapshot(ordinary) == snapshot(superuser)
        assert _rejects(ordinary) == _rejects(superuser) == _EXPECTED_REJECTS
        # The refusal left the chunk's transaction intact, and the database checks this role's rows.
        with pytest.raises(sa.exc.IntegrityError, match="foreign key"), ordinary.begin() as conn:
            conn.execute(ts.dossier_files.insert().values(dossier_id=10**9, file_name="orphan.xml", source="portal"))
    finally:
        superuser.dispose()
        ordinary.dispose()


@pytest.mark.postgres
def test_a_role_granted_the_parameter_takes_the_replica_path(role_database):
    engine = open_target(role_database(granted=True))
    try:
        outcomes = _files_against_a_deleted_dossier(engine)
        assert {o.foreign_key_checks for o in outcomes} == {foreign_keys.REPLICA}
        assert _rejects(engine) == _EXPECTED_REJECTS
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("extra", ["trigger", "foreign key"])
def test_a_table_with_checks_of_its_own_keeps_the_per_row_path(pg_url, pg_superuser, extra):
    """The replica role would silence them too: the new system's trigger, a key the load did not prove."""
    engine = open_target(pg_url)
    try:
        with engine.begin() as conn:
            if extra == "trigger":
                conn.execute(sa.text("CREATE TABLE file_audit (file_name text)"))
                conn.execute(
                    sa.text(
                        "CREATE FUNCTION audit_file() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN INSERT INTO file_audit VALUES (NEW.file_name); RETURN NEW; END $$"
                    )
                )
                conn.execute(
                    sa.text(
                        "CREATE TRIGGER audit AFTER INSERT ON dossier_files FOR EACH ROW EXECUTE FUNCTION audit_file()"
                    )
                )
            else:
                conn.execute(sa.text("CREATE TABLE forms (form_code varchar(20) PRIMARY KEY)"))
                conn.execute(sa.text("INSERT INTO forms VALUES ('TK1-TS')"))
                conn.execute(
                    sa.text("ALTER TABLE dossier_files ADD FOREIGN KEY (form_code) REFERENCES forms (form_code)")
                )
        outcomes = _files_against_a_deleted_dossier(engine)
        assert {o.foreign_key_checks for o in outcomes} == {foreign_keys.PER_ROW_OTHER_TRIGGERS}
        assert _rejects(engine) == _EXPECTED_REJECTS
        if extra == "trigger":  # it ran for every row written
            with engine.connect() as conn:
                audited = set(conn.execute(sa.text("SELECT file_name FROM file_audit")).scalars())
            assert audited == {"tệp 10.xml", "tệp 14.xml", "tệp 21.xml"}
        else:  # and that key is still checked per row: a file of an unknown form fails the chunk
            with pytest.raises(sa.exc.IntegrityError, match="foreign key"):
                merge(engine, "dossier_files", [file_row(30, 1, form_code="NO-SUCH")], legacy_table="HO_SO_TEP")
    finally:
        engine.dispose()


def _plant_a_dossier_changed_after_the_cutover(legacy: sa.Engine, target: sa.Engine) -> None:
    """The new system's own dossier with the number of a legacy dossier with files and history: a conflict."""
    with legacy.connect() as conn:
        number = conn.execute(
            sa.text(
                "SELECT d.SO_HO_SO FROM HO_SO d WHERE d.SO_HO_SO GLOB '[A-Z0-9]*' "
                "AND EXISTS (SELECT 1 FROM HO_SO_TEP f WHERE f.ID_HO_SO = d.ID_HO_SO) "
                "AND EXISTS (SELECT 1 FROM HO_SO_LICH_SU h WHERE h.ID_HO_SO = d.ID_HO_SO) ORDER BY d.ID_HO_SO LIMIT 1"
            )
        ).scalar_one()
    with target.begin() as conn:
        conn.execute(
            ts.dossiers.insert().values(
                dossier_no=number,
                unit_code="DV001",
                procedure_code="600",
                submitted_at=AFTER,
                status="received",
                source="portal",
                updated_at=AFTER,
            )
        )


@pytest.mark.postgres
def test_a_site_loads_alike_with_and_without_the_right_and_says_which_path_ran(tmp_path: Path, pg_url, role_database):
    summaries, targets = [], []
    for name, url in (("superuser", pg_url), ("ordinary", role_database())):
        target = open_target(url)
        legacy, files, _ = demo_site(tmp_path / name, f"sqlite:///{tmp_path / name}.sqlite", target)
        _plant_a_dossier_changed_after_the_cutover(legacy, target)
        summaries.append(
            load_site(
                legacy,
                target,
                site_id="demo",
                run_id=str(uuid.uuid4()),
                cutover=CUTOVER,
                attachments_dir=files,
                chunk_rows=200,
                reference_date=dt.date(2026, 1, 1),
            )
        )
        legacy.dispose()
        targets.append(target)
    try:
        replica, per_row = (s.to_dict() for s in summaries)
        assert replica["tables"] == per_row["tables"] and replica["accounting_ok"]
        for legacy_table in ("HO_SO_TEP", "HO_SO_LICH_SU"):  # the dossier in conflict: its rows rejected
            assert replica["tables"][legacy_table]["rejects_by_reason"].get(reasons.PARENT_NOT_LOADED)
        chunks_with_a_parent = sum(
            t["chunks"] for name, t in replica["tables"].items() if name in ("HO_SO_TEP", "HO_SO_LICH_SU")
        )
        assert replica["foreign_key_checks"] == {foreign_keys.REPLICA: chunks_with_a_parent}
        assert per_row["foreign_key_checks"] == {foreign_keys.PER_ROW_NOT_PERMITTED: chunks_with_a_parent}
        assert snapshot(targets[1]) == snapshot(targets[0])
    finally:
        for target in targets:
            target.dispose()
