"""Transform speed on dossier rows: `python -m benchmarks transform [ROWS] [CHUNK]` (default 1,000,000 / 50,000).

Synthetic HO_SO batches (realistic columns, ~3% legacy-encoded notes, a few
defects) are transformed in chunks, as the load does. The baseline, measured
in the same run on the same batches, is the floor every transform pays: turning
the Arrow batch into Python values and computing each row's lineage digest
(ts24_migrate.core.rows.fingerprint.row_digest) one row at a time. Prints rows/s, the ratio
to the baseline and peak memory (max RSS): batches are bounded by CHUNK; what
grows with ROWS is only the context's memory of accepted dossier ids and
numbers (for orphan and duplicate checks), about 200 bytes a dossier.
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import time

import numpy as np
import pyarrow as pa

from transform import TransformContext, transform_batch
from ts24_migrate.core.legacy.encodings import encode_as_tcvn3_mojibake, encode_as_vni_mojibake
from ts24_migrate.core.rows.fingerprint import row_digest

NOTES = [
    "Bổ sung hồ sơ theo yêu cầu của cơ quan bảo hiểm",
    "Đã trả kết quả qua bưu điện",
    "Đơn vị đề nghị điều chỉnh mức đóng",
    "Người lao động nghỉ ốm dài ngày",
    None,
    None,
    "",
]
NOTES += [encode_as_tcvn3_mojibake(NOTES[0]), encode_as_vni_mojibake(NOTES[1])]
NOTE_WEIGHTS = np.array([0.2, 0.2, 0.2, 0.17, 0.1, 0.1, 0.0025, 0.015, 0.0125])
UNITS = [f"DN{i:06d}" for i in range(2000)] + ["dn000001 ", "ZZ999999"]


def make_batch(rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
    ids = np.arange(start, start + n)
    submitted = np.datetime64("2018-01-01T08:00") + rng.integers(0, 7 * 365 * 24 * 60, n).astype("timedelta64[m]")
    received = submitted + rng.integers(10, 3 * 24 * 60, n).astype("timedelta64[m]")
    status = rng.integers(0, 7, n)
    months = rng.integers(1, 13, n)
    years = rng.integers(2018, 2025, n)
    return pa.RecordBatch.from_pydict(
        {
            "ID_HO_SO": pa.array(ids, pa.int64()),
            "SO_HO_SO": pa.array([f"HS-{i}" for i in ids]),
            "MA_DV": pa.array(rng.choice(UNITS, n)),
            "MA_THU_TUC": pa.array(rng.choice(["600", "600a", "600b", "630a", "602"], n)),
            "KY_KE_KHAI": pa.array([f"{m:02d}/{y}" for m, y in zip(months, years)]),
            "NGAY_NOP": pa.array(submitted.astype("datetime64[us]")),
            "NGAY_TIEP_NHAN": pa.array(received.astype("datetime64[us]")),
            "NGAY_HEN_TRA": pa.array((received + np.timedelta64(20, "D")).astype("datetime64[D]")),
            "NGAY_TRA_KQ": pa.array(
                np.where(status >= 4, received + np.timedelta64(10, "D"), np.datetime64("NaT")).astype("datetime64[us]")
            ),
            "TRANG_THAI": pa.array(status, pa.int16()),
            "MA_CQ": pa.array(rng.choice(["01", "0101", "0102"], n)),
            "CAN_BO_XU_LY": pa.array(rng.choice(["cb01", "cb02", None], n)),
            "SO_KET_QUA": pa.array([None] * n, pa.string()),
            "GHI_CHU": pa.array(rng.choice(np.array(NOTES, dtype=object), n, p=NOTE_WEIGHTS / NOTE_WEIGHTS.sum())),
            "NGAY_CAP_NHAT": pa.array(received.astype("datetime64[us]")),
        }
    )


def baseline(batch: pa.RecordBatch) -> int:
    columns = [c.to_pylist() for c in batch.columns]
    return sum(len(row_digest(values)) for values in zip(*columns))


def main(args: list[str]) -> int:
    rows = int(args[0]) if args else 1_000_000
    chunk = int(args[1]) if len(args) > 1 else 50_000
    rng = np.random.default_rng(42)
    ctx = TransformContext("bench", dt.date(2025, 7, 1), None, dt.date(2025, 7, 31))
    ctx.known_unit_codes.update(u.strip().upper() for u in UNITS[:-1])
    ctx.known_office_codes.update(["01", "0101", "0102"])
    base_s = transform_s = 0.0
    loaded = rejected = 0
    for start in range(0, rows, chunk):
        batch = make_batch(rng, start + 1, min(chunk, rows - start))
        t0 = time.perf_counter()
        baseline(batch)
        t1 = time.perf_counter()
        result = transform_batch("HO_SO", batch, ctx)
        t2 = time.perf_counter()
        base_s += t1 - t0
        transform_s += t2 - t1
        loaded += len(result.rows)
        rejected += len(result.rejects)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows {rows:,} in chunks of {chunk:,}: loaded {loaded:,}, rejected {rejected:,}")
    print(f"baseline (to Python + row digest): {base_s:6.1f} s  {rows / base_s:10,.0f} rows/s")
    print(f"transform_batch:                   {transform_s:6.1f} s  {rows / transform_s:10,.0f} rows/s")
    print(f"ratio transform / baseline: {transform_s / base_s:.2f}x   peak RSS {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
