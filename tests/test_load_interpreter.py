"""The interpreter settings a load changes while it runs are put back, also when loads overlap."""

from __future__ import annotations

import gc
import sys

import pytest

from load.interpreter import GC_THRESHOLDS, SWITCH_SECONDS, fewer_collections, short_switch_interval
from load.prefetch import prefetched


@pytest.fixture
def default_thresholds():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_collections_are_rarer_during_a_load_and_as_before_after(default_thresholds):
    with fewer_collections():
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_loads_keep_the_setting_until_the_last_one_ends(default_thresholds):
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == GC_THRESHOLDS  # the second load still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_higher_thresholds_set_by_the_program_are_kept(default_thresholds):
    gc.set_threshold(500_000, 5, 1_000)
    with fewer_collections():
        assert gc.get_threshold() == (500_000, GC_THRESHOLDS[1], 1_000)
    assert gc.get_threshold() == (500_000, 5, 1_000)


def test_a_failing_load_puts_the_settings_back(default_thresholds):
    switch = sys.getswitchinterval()
    with pytest.raises(RuntimeError):
        with fewer_collections(), short_switch_interval():
            assert sys.getswitchinterval() == min(switch, SWITCH_SECONDS)
            raise RuntimeError("the target went away")
    assert gc.get_threshold() == (700, 10, 10) and sys.getswitchinterval() == switch


def test_a_prefetch_shortens_the_switch_interval_only_while_it_runs():
    switch = sys.getswitchinterval()
    seen = [sys.getswitchinterval() for _ in prefetched(iter(range(3)), depth=1)]
    assert seen == [min(switch, SWITCH_SECONDS)] * 3
    assert sys.getswitchinterval() == switch
