"""Find the keys that differ between two row sets by checksumming key ranges.

Each side is a set of (key, md5) rows that the database selects itself. A
range is compared by its row count and the sum of the first 28 bits of the
row hashes (load.row_hash.md5_prefix_int), both computed IN the database: when
nothing differs, the whole diff is one aggregate scan per side and no row
travels to Python. Only ranges whose checksums differ are split further, so
the work grows with the number of differences, not with the table.

Integer keys are split level by level into equal buckets (widths are powers
of two), as fine as one GROUP BY query returning at most `max_buckets` rows
allows: one query per side and level covers every range still in question,
so scattered differences in a 1M-row table cost a few scans, not a query per
range. When the
rows left in question are few (`leaf_rows`), or splitting stops narrowing
them, keys and hashes are fetched in key order and merged. String keys (small
code tables such as offices) are halved at their median key instead.

A change goes unseen only if it leaves a range's count and 28-bit hash sum
unchanged (about 1 in 2**28 per changed row).

Example::

    lineage_side = DiffSide(key=..., md5=crosswalk.c.row_md5, where=...)
    target_side = DiffSide(key=units.c.unit_id, md5=row_md5("sqlite", columns), where=...)
    diff = diff_by_key_ranges(conn, lineage_side, target_side, integer_keys=True)
    diff.missing, diff.extra, diff.changed      # keys, sorted
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from load.row_hash import md5_prefix_int

# At most this many bucket numbers go into one IN list.
IN_LIST_MAX = 10_000
# Beyond this many IN-list queries, one streamed pass over both sides is cheaper.
IN_BATCHES_MAX = 4
# When the ranges still in question hold this share of all rows, splitting no longer narrows them.
NARROWING_STOPS_AT = 0.9


@dataclass(frozen=True)
class DiffSide:
    """One side of a diff: the rows `where` selects, each with its `key` and 32-hex `md5`."""

    key: sa.ColumnElement[Any]
    md5: sa.ColumnElement[str]
    where: sa.ColumnElement[bool]


@dataclass
class KeyDiff:
    """Keys on the left only (missing), on the right only (extra), on both with other hashes (changed)."""

    # Keys as the key column holds them (integers or strings).
    missing: list[Any] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)
    changed: list[Any] = field(default_factory=list)
    left_rows: int = 0
    right_rows: int = 0
    ranges_checked: int = 0  # key ranges whose checksums were compared (the whole range counts as 1)
    rows_fetched: int = 0  # (key, md5) rows brought to Python to name the differences

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or self.changed)


@dataclass(frozen=True)
class _Checksum:
    rows: int
    hash_sum: int

    @classmethod
    def of(cls, rows: Any, hash_sum: Any) -> _Checksum:
        return cls(int(rows or 0), int(hash_sum or 0))


_EMPTY = _Checksum(0, 0)


def diff_by_key_ranges(
    conn: Connection,
    left: DiffSide,
    right: DiffSide,
    *,
    integer_keys: bool,
    max_buckets: int = 8192,
    leaf_rows: int = 20_000,
) -> KeyDiff:
    """Compare two row sets by key; return the differing keys (see module docstring).

    max_buckets: key ranges one grouped query may return (integer keys).
    leaf_rows: when the ranges in question hold at most this many rows, fetch them.
    """
    if max_buckets < 2 or leaf_rows < 1:
        raise ValueError("max_buckets must be at least 2 and leaf_rows at least 1")
    dialect = conn.dialect.name
    left_total, left_lo, left_hi = _whole_range(conn, left, dialect)
    right_total, right_lo, right_hi = _whole_range(conn, right, dialect)
    diff = KeyDiff(left_rows=left_total.rows, right_rows=right_total.rows, ranges_checked=1)
    if left_total == right_total:
        return diff
    if integer_keys:
        _prefer_hashed_grouping(conn)
        lo = min(k for k in (left_lo, right_lo) if k is not None)
        hi = max(k for k in (left_hi, right_hi) if k is not None)
        _bisect_integer_keys(conn, left, right, diff, dialect, int(lo), int(hi), max_buckets, leaf_rows)
    else:
        _bisect_string_keys(conn, left, right, diff, dialect, left_total, right_total, leaf_rows)
    for keys in (diff.missing, diff.extra, diff.changed):
        keys.sort()
    return diff


# -- aggregates ---------------------------------------------------------------


def _hash_part(side: DiffSide, dialect: str) -> sa.ColumnElement[int]:
    return md5_prefix_int(dialect, side.md5)


def _whole_range(conn: Connection, side: DiffSide, dialect: str) -> tuple[_Checksum, Any, Any]:
    query = sa.select(
        sa.func.count(), sa.func.sum(_hash_part(side, dialect)), sa.func.min(side.key), sa.func.max(side.key)
    ).where(side.where)
    rows, hash_sum, lo, hi = conn.execute(query).one()
    return _Checksum.of(rows, hash_sum), lo, hi


def _prefer_hashed_grouping(conn: Connection) -> None:
    """On PostgreSQL, group buckets by hashing, for the rest of this transaction.

    The planner cannot estimate how many buckets `(key - lo) / width` makes, so
    it sorts whole rows (spilling to disk) before hashing them; with sorting
    discouraged it hashes (key bucket, hash) in parallel workers instead,
    which makes a grouped pass cost about as much as the plain checksum.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL enable_sort = off"))


def _bucket_checksums(
    conn: Connection,
    side: DiffSide,
    dialect: str,
    bucket: sa.ColumnElement[int],
    condition: sa.ColumnElement[bool] | None,
) -> dict[int, _Checksum]:
    # Grouped over a subquery so that the bucket expression (with its bound values) is written once.
    inner = sa.select(bucket.label("bucket"), _hash_part(side, dialect).label("hash_part")).where(side.where)
    if condition is not None:
        inner = inner.where(condition)
    sub = inner.subquery()
    query = sa.select(sub.c.bucket, sa.func.count(), sa.func.sum(sub.c.hash_part)).group_by(sub.c.bucket)
    return {int(b): _Checksum.of(n, s) for b, n, s in conn.execute(query).all()}


# -- integer keys: level-wise buckets -------------------------------------------


def _power_of_two_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _bisect_integer_keys(
    conn: Connection,
    left: DiffSide,
    right: DiffSide,
    diff: KeyDiff,
    dialect: str,
    lo: int,
    hi: int,
    max_buckets: int,
    leaf_rows: int,
) -> None:
    total_rows = max(diff.left_rows, diff.right_rows)
    # Widths are powers of two, so every bucket lies inside one bucket of the level above.
    width = _power_of_two_at_least(-(-(hi - lo + 1) // max_buckets))
    parents: list[int] | None = None  # None: the whole range is in question
    parent_width = 0
    level = 1
    while True:
        left_buckets = _checksums_under(conn, left, dialect, lo, width, parents, parent_width)
        right_buckets = _checksums_under(conn, right, dialect, lo, width, parents, parent_width)
        buckets = left_buckets.keys() | right_buckets.keys()
        diff.ranges_checked += len(buckets)
        differing = sorted(b for b in buckets if left_buckets.get(b, _EMPTY) != right_buckets.get(b, _EMPTY))
        if not differing:
            return  # cannot happen: the sums are exact, so a differing range has a differing part
        rows_in_question = sum(
            max(left_buckets.get(b, _EMPTY).rows, right_buckets.get(b, _EMPTY).rows) for b in differing
        )
        stop_narrowing = level >= 2 and rows_in_question > NARROWING_STOPS_AT * total_rows
        if width == 1 or rows_in_question <= leaf_rows or stop_narrowing:
            _name_integer_keys(conn, left, right, diff, lo, width, differing)
            return
        # As fine as `max_buckets` buckets per query allow, and at least twice as fine as now.
        child = _power_of_two_at_least(-(-(len(differing) * width) // max_buckets))
        parents, parent_width, width = differing, width, min(child, width // 2)
        level += 1


def _bucket_of(side: DiffSide, lo: int, width: int) -> sa.ColumnElement[int]:
    """Bucket number of a key: buckets are `width` consecutive keys counted from `lo`."""
    return (side.key - sa.literal(lo, sa.BigInteger)) // sa.literal(width, sa.BigInteger)


def _bucket_in(side: DiffSide, lo: int, width: int, buckets: list[int]) -> sa.ColumnElement[bool]:
    # Bucket numbers are integers this module computed: written into the SQL as literals, so
    # that a long list meets no driver's parameter limit.
    return _bucket_of(side, lo, width).in_(sa.bindparam("buckets", buckets, expanding=True, literal_execute=True))


def _in_batches(buckets: list[int]) -> list[list[int]] | None:
    """IN-list batches over `buckets`, or None when one unfiltered pass is cheaper."""
    batches = [buckets[i : i + IN_LIST_MAX] for i in range(0, len(buckets), IN_LIST_MAX)]
    return None if len(batches) > IN_BATCHES_MAX else batches


def _checksums_under(
    conn: Connection, side: DiffSide, dialect: str, lo: int, width: int, parents: list[int] | None, parent_width: int
) -> dict[int, _Checksum]:
    """Checksums of the `width`-buckets inside the `parent_width`-buckets `parents` (all when None)."""
    bucket = _bucket_of(side, lo, width)
    if parents is None:
        return _bucket_checksums(conn, side, dialect, bucket, None)
    batches = _in_batches(parents)
    if batches is None:
        wanted, ratio = set(parents), parent_width // width
        return {b: c for b, c in _bucket_checksums(conn, side, dialect, bucket, None).items() if b // ratio in wanted}
    found: dict[int, _Checksum] = {}
    for batch in batches:
        found.update(_bucket_checksums(conn, side, dialect, bucket, _bucket_in(side, lo, parent_width, batch)))
    return found


def _name_integer_keys(
    conn: Connection, left: DiffSide, right: DiffSide, diff: KeyDiff, lo: int, width: int, differing: list[int]
) -> None:
    """Fetch (key, md5) of the differing buckets from both sides, in key order, and merge them."""
    batches = _in_batches(differing)
    conditions: list[tuple[sa.ColumnElement[bool] | None, sa.ColumnElement[bool] | None]]
    if batches is None:
        conditions = [(None, None)]  # a streamed pass over everything; equal ranges merge to nothing
    else:
        conditions = [(_bucket_in(left, lo, width, batch), _bucket_in(right, lo, width, batch)) for batch in batches]
    for left_condition, right_condition in conditions:
        left_rows = _ordered_hashes(conn, left, left_condition)
        right_rows = _ordered_hashes(conn, right, right_condition)
        _merge(left_rows, right_rows, diff, normalise=int)


def _ordered_hashes(
    conn: Connection, side: DiffSide, condition: sa.ColumnElement[bool] | None
) -> Iterator[tuple[Any, str]]:
    query = sa.select(side.key, side.md5).where(side.where)
    if condition is not None:
        query = query.where(condition)
    # Streamed: memory holds one partition, however many rows the ranges cover.
    query = query.order_by(side.key).execution_options(stream_results=True, yield_per=5_000)
    result = conn.execute(query)
    for partition in result.partitions():
        yield from partition


def _merge(
    left_rows: Iterable[tuple[Any, str]],
    right_rows: Iterable[tuple[Any, str]],
    diff: KeyDiff,
    normalise: Callable[[Any], Any],
) -> None:
    """Walk two key-ordered streams together; record keys on one side only, or with other hashes."""
    tagged = heapq.merge(((normalise(k), 0, h) for k, h in left_rows), ((normalise(k), 1, h) for k, h in right_rows))
    pending: tuple[Any, int, str] | None = None
    for key, side, md5 in tagged:
        diff.rows_fetched += 1
        if pending is not None and pending[0] == key:
            if pending[2] != md5:
                diff.changed.append(key)
            pending = None
            continue
        if pending is not None:
            (diff.missing if pending[1] == 0 else diff.extra).append(pending[0])
        pending = (key, side, md5)
    if pending is not None:
        (diff.missing if pending[1] == 0 else diff.extra).append(pending[0])


# -- string keys: halving at the median ----------------------------------------


def _range_condition(side: DiffSide, lo: Any, hi: Any) -> sa.ColumnElement[bool]:
    """Keys in [lo, hi); None means unbounded."""
    parts = []
    if lo is not None:
        parts.append(side.key >= lo)
    if hi is not None:
        parts.append(side.key < hi)
    return sa.and_(sa.true(), *parts)


def _range_checksum(conn: Connection, side: DiffSide, dialect: str, lo: Any, hi: Any) -> _Checksum:
    query = sa.select(sa.func.count(), sa.func.sum(_hash_part(side, dialect))).where(
        side.where, _range_condition(side, lo, hi)
    )
    return _Checksum.of(*conn.execute(query).one())


def _median_key(conn: Connection, side: DiffSide, lo: Any, hi: Any, rows: int) -> Any:
    query = (
        sa.select(side.key)
        .where(side.where, _range_condition(side, lo, hi))
        .order_by(side.key)
        .offset(rows // 2)
        .limit(1)
    )
    return conn.execute(query).scalar_one()


def _bisect_string_keys(
    conn: Connection,
    left: DiffSide,
    right: DiffSide,
    diff: KeyDiff,
    dialect: str,
    left_total: _Checksum,
    right_total: _Checksum,
    leaf_rows: int,
) -> None:
    # The database's collation orders string keys; Python only compares them for equality
    # (dictionaries at the leaves), so the two orders never have to agree.
    in_question = [(None, None, left_total, right_total)]
    while in_question:
        lo, hi, left_sum, right_sum = in_question.pop()
        if max(left_sum.rows, right_sum.rows) <= leaf_rows:
            _name_string_keys(conn, left, right, diff, lo, hi)
            continue
        # Split on the side with more rows: its median is strictly above its lowest key in the
        # range (keys are unique on each side), so both halves are smaller than the range.
        larger, rows = (left, left_sum.rows) if left_sum.rows >= right_sum.rows else (right, right_sum.rows)
        middle = _median_key(conn, larger, lo, hi, rows)
        for part_lo, part_hi in ((lo, middle), (middle, hi)):
            part_left = _range_checksum(conn, left, dialect, part_lo, part_hi)
            part_right = _range_checksum(conn, right, dialect, part_lo, part_hi)
            diff.ranges_checked += 1
            if part_left != part_right:
                in_question.append((part_lo, part_hi, part_left, part_right))


def _name_string_keys(conn: Connection, left: DiffSide, right: DiffSide, diff: KeyDiff, lo: Any, hi: Any) -> None:
    found: list[dict[Any, str]] = []  # per side: key -> md5
    for side in (left, right):
        query = sa.select(side.key, side.md5).where(side.where, _range_condition(side, lo, hi))
        found.append(dict(conn.execute(query).tuples().all()))
    left_hashes, right_hashes = found
    diff.rows_fetched += len(left_hashes) + len(right_hashes)
    diff.missing.extend(k for k in left_hashes if k not in right_hashes)
    diff.extra.extend(k for k in right_hashes if k not in left_hashes)
    diff.changed.extend(k for k, h in left_hashes.items() if k in right_hashes and right_hashes[k] != h)
