"""load.chunking: chunks of dossier files are cut by rows and by bytes of content; other tables by rows."""

from __future__ import annotations

import sqlalchemy as sa

from extract.discovery import ColumnInfo, TableInfo
from load.chunking import CONTENT_PAGE_ROWS, ChunkLimits, table_chunks
from ts24_migrate.core.legacy.schema import HO_SO_LICH_SU, HO_SO_TEP


def _info(table: sa.Table) -> TableInfo:
    columns = tuple(ColumnInfo(c.name, str(c.type), c.nullable) for c in table.columns)
    return TableInfo(table.name, None, columns, tuple(c.name for c in table.primary_key), table)


def _file(file_id: int, *, stored: bytes | None = None, on_disk: int | None = None) -> tuple:
    values = {"ID_TEP": file_id, "NOI_DUNG": stored, "KICH_THUOC": on_disk}
    return tuple(values.get(c.name) for c in HO_SO_TEP.columns)


def test_file_chunks_stop_at_the_content_budget_and_a_big_file_stands_alone():
    files = _info(HO_SO_TEP)
    rows = [
        _file(1, on_disk=400),
        _file(2, stored=b"x" * 500),
        _file(3, on_disk=50_000),
        _file(4, on_disk=10),
        _file(5, on_disk=None),
        _file(6, on_disk=-3),
        _file(7, stored=b"y" * 700),
    ]
    pages = [rows[:3], rows[3:]]  # as the reader hands them over
    chunks = list(table_chunks(iter(pages), files, ChunkLimits(rows=100, content_bytes=1_000)))
    assert [[r[0] for r in chunk] for chunk in chunks] == [[1, 2, 3], [4, 5, 6, 7]]
    chunks = list(table_chunks(iter(pages), files, ChunkLimits(rows=100, content_bytes=600)))
    assert [[r[0] for r in chunk] for chunk in chunks] == [[1, 2], [3], [4, 5, 6, 7]]
    chunks = list(table_chunks(iter(pages), files, ChunkLimits(rows=2, content_bytes=10**9)))
    assert [[r[0] for r in chunk] for chunk in chunks] == [[1, 2], [3, 4], [5, 6], [7]]


def test_files_are_read_in_small_pages_and_other_tables_in_whole_chunks():
    limits = ChunkLimits(rows=50_000)
    assert limits.page_rows(_info(HO_SO_TEP)) == CONTENT_PAGE_ROWS
    history = _info(HO_SO_LICH_SU)
    assert limits.page_rows(history) == 50_000
    pages = [[(1,), (2,)], [(3,)]]
    assert list(table_chunks(iter(pages), history, limits)) == pages  # passed through as read
