"""Accounting: source = backed up; source = loaded + rejected for mapped tables."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from test_validation_data import build_target

from load.bookkeeping import conflicts, rejects
from ts24_migrate.core.errors import UsageError
from validation.accounting import accounting_check, recorded_counts


def test_balanced_figures_are_ok_for_mapped_and_unmapped_tables():
    rows = accounting_check(
        {
            "HO_SO": {
                "source": 1200,
                "backed_up": 1200,
                "loaded": 1187,
                "rejected": 13,
                "conflicts": 2,
                "source_fingerprint": "rows=1200;sum=ab",
                "backup_fingerprint": "rows=1200;sum=ab",
            },
            "HT_NHAT_KY": {"source": 300, "backed_up": 300},
            "IMPORT_TAM": {"source": 0, "backed_up": 0},
        }
    )
    assert [(r.table, r.ok, r.mapped) for r in rows] == [
        ("HO_SO", True, True),
        ("HT_NHAT_KY", True, False),
        ("IMPORT_TAM", True, False),
    ]
    assert rows[0].to_dict()["problems"] == []


@pytest.mark.parametrize(
    "figures, problem",
    [
        ({"source": 10, "backed_up": 10, "loaded": 8, "rejected": 1}, "1 unaccounted"),
        ({"source": 10, "backed_up": 10, "loaded": 9, "rejected": 2}, "1 too many"),
        ({"source": 10, "backed_up": 9}, "backed up 9 rows of 10"),
        ({"source": 10}, "no backup figure"),
        ({"source": 10, "backed_up": 10, "loaded": 10}, "both a loaded and a rejected"),
        ({"source": 10, "backed_up": 10, "loaded": 7, "rejected": 3, "conflicts": 4}, "conflicts are rejects"),
        (
            {"source": 1, "backed_up": 1, "source_fingerprint": "rows=1;sum=01", "backup_fingerprint": "rows=1;sum=02"},
            "fingerprint differs",
        ),
    ],
)
def test_each_way_of_not_adding_up_is_named(figures, problem):
    (row,) = accounting_check({"DM_DONVI": figures})
    assert not row.ok
    assert any(problem in p for p in row.problems), row.problems


@pytest.mark.parametrize(
    "figures, message",
    [
        ({"backed_up": 3}, "'source'"),
        ({"source": -1, "backed_up": 0}, "whole number"),
        ({"source": "12", "backed_up": 12}, "whole number"),
        ({"source": 1, "backed_up": 1, "loadded": 1}, "unknown key 'loadded'"),
    ],
)
def test_malformed_figures_are_one_clear_usage_error(figures, message):
    with pytest.raises(UsageError, match=message) as caught:
        accounting_check({"HO_SO": figures})
    assert "HO_SO" in str(caught.value) and "\n" not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(
    source=st.integers(0, 50),
    backed_up=st.integers(0, 50),
    loaded=st.none() | st.integers(0, 50),
    rejected=st.integers(0, 50),
)
def test_ok_exactly_when_every_row_is_accounted_for(source, backed_up, loaded, rejected):
    figures = {"source": source, "backed_up": backed_up}
    if loaded is not None:
        figures.update(loaded=loaded, rejected=rejected)
    (row,) = accounting_check({"T": figures})
    expected = backed_up == source and (loaded is None or loaded + rejected == source)
    assert row.ok is expected


def test_figures_are_held_against_the_target_bookkeeping(sqlite_url):
    engine = sa.create_engine(sqlite_url("target"))
    build_target(engine, units=6, persons=4, dossiers=5)
    now = dt.datetime(2025, 7, 1)
    with engine.begin() as conn:
        conn.execute(
            rejects.insert(),
            [
                {
                    "site_id": "hn-01",
                    "legacy_table": "DM_DONVI",
                    "legacy_key": f"X{i}",
                    "run_id": "r",
                    "reason_code": "TAX_CODE_CHECK_DIGIT",
                    "rejected_at": now,
                }
                for i in range(2)
            ],
        )
        conn.execute(
            conflicts.insert().values(
                site_id="hn-01",
                legacy_table="DM_DONVI",
                legacy_key="X1",
                target_table="units",
                run_id="r",
                reason="changed",
                detected_at=now,
            )
        )
        conn.execute(
            rejects.insert().values(
                site_id="other", legacy_table="DM_DONVI", legacy_key="Y", run_id="r", reason_code="X", rejected_at=now
            )
        )
    recorded = recorded_counts(engine, site_id="hn-01")
    assert recorded["DM_DONVI"] == {"loaded": 6, "rejected": 2, "conflicts": 1}
    assert recorded["HO_SO"] == {"loaded": 5, "rejected": 0, "conflicts": 0}
    good, bad = accounting_check(
        {
            "DM_DONVI": {"source": 8, "backed_up": 8, "loaded": 6, "rejected": 2, "conflicts": 1},
            "HO_SO": {"source": 6, "backed_up": 6, "loaded": 6, "rejected": 0},
        },
        recorded=recorded,
    )
    assert good.ok
    assert bad.problems == ("loaded 6 in the figures, 5 in the target's bookkeeping",)
