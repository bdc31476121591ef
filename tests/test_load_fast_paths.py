"""The load's fast paths give the same results as the plain ones.

- COPY as CSV written by Arrow stores exactly what binary COPY stores (NULL vs
  empty text, quotes, line breaks, backslashes, a lone `\\.` line, Vietnamese,
  microseconds, dates, booleans).
- The temporary stage and plan tables a PostgreSQL session keeps between
  chunks start empty for every chunk, also for two chunks in one transaction.
- Attachment paths resolved folder by folder still refuse a folder that is a
  link out of the attachment folder.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_load_support import frame, open_target, rows_of, unit_row

from load import bookkeeping as bk
from load import copy_postgres
from load import target_schema as ts
from load.merge import merge_chunk
from load.staging import to_stage_arrow
from load.target_map import target_spec
from load.transactions import write_transaction
from transform.tables.dossier_files import AttachmentFolder, AttachmentProblem, attachment_path

_TRICKY_TEXT = [
    "",
    " ",
    '"',
    '""',
    "a,b",
    "line\nbreak",
    "cr\r\nlf",
    "\\",
    "\\.",
    "x\n\\.\ny",
    "Hà Nội",
    "NULL",
    "\\N",
    "tab\there",
    "😀",
]


def _columns() -> list[sa.Column]:
    return [
        sa.Column("stage_seq", sa.BigInteger),
        sa.Column("label", sa.Text),
        sa.Column("code", sa.String(20)),
        sa.Column("at", sa.DateTime),
        sa.Column("on_day", sa.Date),
        sa.Column("flag", sa.Boolean),
        sa.Column("amount", sa.BigInteger),
    ]


_text = st.one_of(
    st.none(),
    st.sampled_from(_TRICKY_TEXT),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12),
)
_rows = st.lists(
    st.tuples(
        _text,
        st.one_of(st.none(), st.sampled_from(["", "AB", '"q"'])),
        st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31))),
        st.one_of(st.none(), st.dates(min_value=dt.date(1000, 1, 1))),
        st.one_of(st.none(), st.booleans()),
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    ),
    min_size=1,
    max_size=30,
)


def _arrow(rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows))
    return pa.table(
        {
            "stage_seq": pa.array(range(len(rows)), pa.int64()),
            "label": pa.array(columns[0], pa.large_string()),
            "code": pa.array(columns[1], pa.large_string()),
            "at": pa.array(columns[2], pa.timestamp("us")),
            "on_day": pa.array(columns[3], pa.date32()),
            "flag": pa.array(columns[4], pa.bool_()),
            "amount": pa.array(columns[5], pa.int64()),
        }
    )


def _copied(conn: sa.Connection, data: pa.Table, *, csv: bool) -> list[tuple]:
    columns = _columns()
    names = [c.name for c in columns]
    if not csv:  # the binary path, taken for a table with a column CSV cannot carry
        columns.append(sa.Column("blob", sa.LargeBinary))
        data = data.append_column("blob", pa.array([None] * data.num_rows, pa.large_binary()))
    assert copy_postgres._csv_safe(data) is csv
    table = sa.Table(f"copy_{'csv' if csv else 'binary'}", sa.MetaData(), *columns, prefixes=["TEMPORARY"])
    table.create(conn)
    copy_postgres.copy_arrow(conn, table, data)
    rows = conn.execute(sa.select(*[table.c[n] for n in names]).order_by(table.c.stage_seq)).all()
    table.drop(conn)
    return [tuple(r) for r in rows]


@pytest.mark.postgres
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows)
def test_csv_copy_stores_what_binary_copy_stores(pg_url, rows):
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            data = _arrow(rows)
            by_csv, by_binary = _copied(conn, data, csv=True), _copied(conn, data, csv=False)
        assert by_csv == by_binary
        assert [r[1:] for r in by_csv] == rows  # and both are the values sent
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_two_chunks_in_one_transaction_each_see_only_their_rows(pg_url):
    target = open_target(pg_url)
    spec = target_spec("units")
    now = dt.datetime(2025, 8, 1)
    try:
        with write_transaction(target) as conn:
            for codes in (["DV001", "DV002"], ["DV003"]):
                staged, _ = to_stage_arrow(frame([unit_row(c) for c in codes]), spec)
                outcome = merge_chunk(
                    conn,
                    spec,
                    staged,
                    legacy_table="DM_DONVI",
                    site_id="s1",
                    run_id="r1",
                    cutover=dt.date(2025, 7, 1),
                    now=now,
                )
                assert (outcome.loaded, outcome.inserted) == (len(codes), len(codes))
        with write_transaction(target) as conn:  # a later transaction on the same pooled session
            staged, _ = to_stage_arrow(frame([unit_row("DV004")]), spec)
            outcome = merge_chunk(
                conn,
                spec,
                staged,
                legacy_table="DM_DONVI",
                site_id="s1",
                run_id="r1",
                cutover=dt.date(2025, 7, 1),
                now=now,
            )
            assert (outcome.loaded, outcome.inserted) == (1, 1)
        assert sorted(r.unit_code for r in rows_of(target, ts.units)) == ["DV001", "DV002", "DV003", "DV004"]
        crosswalk_rows = rows_of(target, bk.crosswalk)
        assert len(crosswalk_rows) == 4 and all(r.row_md5 and r.run_id == "r1" for r in crosswalk_rows)
    finally:
        target.dispose()


def test_a_folder_linked_out_of_the_attachment_folder_is_refused(tmp_path: Path):
    root, outside = tmp_path / "files", tmp_path / "outside"
    (root / "2024" / "05").mkdir(parents=True)
    outside.mkdir()
    (root / "2024" / "05" / "a.xml").write_bytes(b"<a/>")
    (outside / "b.xml").write_bytes(b"secret")
    os.symlink(outside, root / "2024" / "06")
    os.symlink(root / "2024" / "05" / "a.xml", root / "2024" / "05" / "inside-link.xml")
    folder = AttachmentFolder(root)
    assert folder.read("2024\\05\\a.xml") == b"<a/>"
    assert folder.read("2024/05/inside-link.xml") == b"<a/>"  # a link that stays inside is followed
    for relative in (
        "2024/06/b.xml",
        "2024/05/../06/b.xml",
        "2024/05/../../../outside/b.xml",
        "C:2024\\05\\a.xml",
        "\\\\server\\share\\a.xml",
        "//server/share/a.xml",
        f"{root}/2024/05/a.xml",
    ):
        with pytest.raises(AttachmentProblem) as refused:
            folder.read(relative)
        assert refused.value.code == "ATTACHMENT_PATH_INVALID"
    # Resolved folder by folder or whole, a path gives the same file.
    for relative in ("2024/05/a.xml", "2024/05/./a.xml", "2024/05/inside-link.xml", "2024/05/missing.xml"):
        assert folder.path(relative) == (root / relative).resolve() == attachment_path(root, relative)
