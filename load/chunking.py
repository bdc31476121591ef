"""How the load cuts a legacy table into chunks: by rows, and by bytes of file content.

A chunk is the unit of the load: read, transformed, merged and recorded in the
ledger at once, so it is what the load holds in memory (a few of them, with the
chunks read ahead). Rows alone do not bound that for dossier files: a scanned
PDF weighs a thousand history rows, and 50,000 of them would not fit. So a
table that holds file contents (stored in a column, or on disk with their size
recorded) is read in small pages and cut into chunks of at most `rows` rows and
at most about `content_bytes` of content; a single file larger than that makes
a chunk of its own. The cut depends only on the rows, so an interrupted load
resumed after its last chunk's key cuts the rest as an uninterrupted one would.

Example::

    limits = ChunkLimits(rows=50_000, content_bytes=32 * 2**20)
    for chunk in table_chunks(pages, info, limits): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from extract.discovery import TableInfo
from ts24_migrate.core.legacy.schema import FILE_CONTENT_COLUMNS

# Rows read at a time from a table that holds file contents, before they are cut into chunks.
CONTENT_PAGE_ROWS = 500


@dataclass(frozen=True)
class ChunkLimits:
    rows: int = 50_000
    content_bytes: int = 32 * 2**20

    def __post_init__(self) -> None:
        if self.rows <= 0 or self.content_bytes <= 0:
            raise ValueError("chunk limits must be positive")

    def page_rows(self, info: TableInfo) -> int:
        """Rows to read at a time from `info`."""
        return self.rows if content_weigher(info) is None else min(self.rows, CONTENT_PAGE_ROWS)


def content_weigher(info: TableInfo) -> Callable[[tuple[Any, ...]], int] | None:
    """Bytes of file content a row of `info` brings into memory, or None for a table without contents."""
    columns = FILE_CONTENT_COLUMNS.get(info.name.upper())
    if columns is None:
        return None
    names = [name.upper() for name in info.column_names]
    stored, declared = (names.index(column) for column in columns)

    def weigh(row: tuple[Any, ...]) -> int:
        content: Any = row[stored]
        if content is not None:
            return len(content)
        size = row[declared]  # the file on disk, read by the transform
        return size if isinstance(size, int) and size > 0 else 0

    return weigh


def table_chunks(
    pages: Iterable[list[tuple[Any, ...]]], info: TableInfo, limits: ChunkLimits
) -> Iterator[list[tuple[Any, ...]]]:
    """The pages read from `info` (each at most limits.page_rows(info) rows), as chunks within `limits`."""
    weigh = content_weigher(info)
    if weigh is None:
        yield from pages
        return
    chunk: list[tuple[Any, ...]] = []
    content = 0
    for page in pages:
        for row in page:
            chunk.append(row)
            content += weigh(row)
            if len(chunk) >= limits.rows or content >= limits.content_bytes:
                yield chunk
                chunk, content = [], 0
    if chunk:
        yield chunk
