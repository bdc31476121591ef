"""The column-wise legacy_row_hash equals ts24_migrate.core.rows.fingerprint.row_digest, for every Arrow type."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from transform.lineage import legacy_row_hashes
from ts24_migrate.core.rows.fingerprint import row_digest

COLUMN_KINDS = {
    "int": (st.integers(-(2**63), 2**63 - 1), pa.int64()),
    "small": (st.integers(-5, 5), pa.int16()),
    "float": (st.floats(allow_nan=False), pa.float64()),
    "bool": (st.booleans(), pa.bool_()),
    "text": (st.text(st.characters(exclude_categories=["Cs"]), max_size=20), pa.string()),
    "codes": (st.sampled_from(["DN0001", "dn0001 ", "", "600a"]), pa.string()),
    "bytes": (st.binary(max_size=20), pa.binary()),
    "moment": (st.datetimes(min_value=dt.datetime(1, 1, 1)), pa.timestamp("us")),
    "recent": (st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2030, 1, 1)), pa.timestamp("us")),
    "aware": (
        st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)),
        pa.timestamp("us", tz="UTC"),
    ),
    "day": (st.dates(), pa.date32()),
    "time": (st.times(), pa.time64("us")),
    "money": (st.decimals(min_value=-(10**6), max_value=10**6, places=2), pa.decimal128(12, 2)),
}


@st.composite
def batches(draw):
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMN_KINDS)), min_size=1, max_size=6))
    n = draw(st.integers(0, 8))
    arrays = []
    for kind in kinds:
        values, arrow_type = COLUMN_KINDS[kind]
        column = draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))
        arrays.append(pa.array(column, type=arrow_type))
    return pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


@settings(max_examples=200, deadline=None)
@given(batches())
def test_property_column_wise_hashes_equal_row_digest(batch):
    columns = [c.to_pylist() for c in batch.columns]
    expected = [row_digest(list(values)).hex() for values in zip(*columns)] if columns[0] else []
    assert legacy_row_hashes(batch) == expected
    chosen = list(range(batch.num_rows))[::2]
    assert legacy_row_hashes(batch, columns, chosen) == [expected[i] for i in chosen]


def test_nanosecond_timestamps_and_old_years_take_the_reference_path():
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array([dt.datetime(999, 1, 1, 0, 0, 0, 1), None], pa.timestamp("us")),
            pa.array([1, 2], pa.timestamp("ns")),
            pa.array([dt.date(12, 3, 4), None]),
            pa.array([decimal.Decimal("1.50"), None], pa.decimal128(5, 2)),
        ],
        names=["a", "b", "c", "d"],
    )
    rows = list(zip(*[c.to_pylist() for c in batch.columns]))
    assert legacy_row_hashes(batch) == [row_digest(list(r)).hex() for r in rows]
