"""Big objects stay local: clustering, delayed I/O, the locality cache, their switches and metrics."""

from __future__ import annotations

import operator
import threading
import time

import dask
import numpy as np
import pytest

import wukong
from wukong.core.locality import MISSING, LocalityCache

BIG = 700_000  # float64s: 5.6 MB, over the default 4 MiB big-object size
OFF = {"clustering": False, "delayed_io": False, "locality_cache": False}


def scaled_sum(array, factor):
    return float(array.sum() * factor)


BIG_MADE = threading.Event()  # shared by executors in one process (the threads mode)


def big_array(size, signal=False):
    if signal:
        BIG_MADE.set()
    return np.ones(size)


def slow_value(seconds, after_big=False):
    if after_big:
        # Start the sleep only once the big array exists, so its executor's wait overlaps it
        # however late a busy machine schedules that executor.
        BIG_MADE.wait(timeout=30)
    time.sleep(seconds)
    return 2


def fan_in_graph(slow_seconds=0.0, after_big=False):
    """A big output needed by two dependents, each with one small input from another executor."""
    return {
        "big": (big_array, BIG, after_big),
        "small-1": (operator.add, 1, 1),
        "small-2": (slow_value, slow_seconds, after_big),
        "d": (scaled_sum, "big", "small-1"),
        "e": (scaled_sum, "big", "small-2"),
    }


def fan_out_graph():
    """A big output with three dependents that need nothing else."""
    graph = {"big": (np.ones, BIG)}
    graph.update({f"d{i}": (scaled_sum, "big", i) for i in range(3)})
    return graph


def test_delayed_io_keeps_a_big_input_out_of_storage(client):
    graph = fan_in_graph()
    assert client.get(graph, ["d", "e"]) == dask.get(graph, ["d", "e"]) == (2 * BIG, 2 * BIG)
    metrics = client.last_job.metrics.totals
    # The big array's executor waited for the small inputs and ran both dependents itself.
    assert metrics.objects_kept_local == 1
    assert metrics.data_bytes_written < 10_000
    assert metrics.delayed_io_timeouts == 0


def test_clustering_runs_a_big_outputs_dependents_in_its_executor(client):
    graph = fan_out_graph()
    keys = [f"d{i}" for i in range(3)]
    assert client.get(graph, keys) == dask.get(graph, keys)
    metrics = client.last_job.metrics.totals
    assert metrics.objects_kept_local == 1 and metrics.data_bytes_written < 10_000
    assert metrics.reads_avoided == 3


@pytest.mark.parametrize(
    ("locality", "written_big"),
    [(OFF, True), ({**OFF, "clustering": True}, False), ({**OFF, "delayed_io": True}, True)],
    ids=["all-off", "clustering-only", "delayed-io-only"],
)
def test_each_switch_turns_its_optimisation_off(redis_url, locality, written_big):
    with wukong.Client(storage=redis_url, locality=locality) as client:
        graph = fan_out_graph()
        keys = [f"d{i}" for i in range(3)]
        assert client.get(graph, keys) == dask.get(graph, keys)
        # Delayed I/O alone does not help a fan-out: its dependents are invoked and read the array.
        assert (client.last_job.metrics.totals.data_bytes_written > BIG * 8) is written_big
        graph = fan_in_graph()
        assert client.get(graph, ["d", "e"]) == (2 * BIG, 2 * BIG)
        kept = client.last_job.metrics.totals.objects_kept_local
        assert kept == (1 if locality.get("delayed_io", True) else 0)


def test_delayed_io_gives_up_on_time_and_writes_first(redis_url):
    # Three workers take the three leaves at once, so the slow one runs beside the big one's wait
    # (with fewer, the waiting worker may run the slow leaf itself, and never time out).
    settings = {"compute_options": {"mode": "threads", "workers": 3}, "locality": {"delayed_io_seconds": 0.2}}
    BIG_MADE.clear()
    with wukong.Client(storage=redis_url, **settings) as client:
        graph = fan_in_graph(slow_seconds=2.0, after_big=True)
        assert client.get(graph, ["d", "e"]) == dask.get(graph, ["d", "e"])
        metrics = client.last_job.metrics.totals
    assert metrics.delayed_io_timeouts == 1
    assert metrics.data_bytes_written > BIG * 8  # written when the wait ran out


def test_metrics_count_the_plain_protocols_traffic(redis_url):
    with wukong.Client(storage=redis_url, locality=OFF) as client:
        graph = {"a": (np.arange, 1000), "b": (operator.mul, "a", 2), "c": (operator.add, "a", "b")}
        np.testing.assert_array_equal(client.get(graph, "c"), np.arange(1000) * 3)
        metrics = client.last_job.metrics.totals
    # "a" is stored (two dependents), and so is the result "c"; "b" becomes "c" with a's array in
    # memory and reads nothing; whoever completes c's counter reads the other input.
    assert 2 * 8000 < metrics.data_bytes_written < 3 * 9000
    assert 0 < metrics.data_bytes_read < 2 * 9000
    assert metrics.metadata_bytes_read > 0 and metrics.objects_kept_local == 0


def test_cache_keeps_pinned_entries_and_evicts_the_oldest_spare_ones():
    cache = LocalityCache(budget=100)
    cache.hold(1, "one", size=60, pins=1, reusable=True)
    cache.hold(2, "two", size=60, pins=0, reusable=True)
    cache.hold(3, "three", size=60, pins=0, reusable=True)  # over budget: 2 goes, 1 is pinned
    assert cache.get(1) == "one" and cache.get(2) is MISSING and cache.get(3) == "three"
    cache.used(1)  # unpinned now: 1 and 3 make 120 bytes; 1 was read before 3, so 1 goes
    assert cache.get(1) is MISSING and cache.get(3) == "three"
    cache.hold(4, "four", size=10, pins=0, reusable=False)  # no later use: never kept
    assert cache.get(4) is MISSING
    cache.pin(4, "four")  # a waited-for dependent became ready: held again for it
    assert cache.get(4) == "four"
    cache.used(4)
    assert 4 not in cache


def test_a_zero_budget_keeps_only_what_queued_tasks_need():
    cache = LocalityCache(budget=0)
    cache.hold(1, "one", size=10, pins=2, reusable=True)
    cache.used(1)
    assert cache.get(1) == "one"
    cache.used(1)
    assert len(cache) == 0


def parked_graph(joins):
    """``joins`` big outputs, each joined with a small one that another executor makes.

    The keys are numbers, which hash alike in every process, so the walk meets each big leaf
    before its small one: one worker runs the big one first, and must not wait for the small.
    """
    graph = {}
    for i in range(joins):
        big, small = 2 * i, 2 * i + 1
        graph[big] = (big_array, BIG)
        graph[small] = (float, "2.5")  # no number among its arguments: a key
        graph[f"join-{i}"] = (scaled_sum, big, small)
    return graph


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_waiting_executor_parks_so_its_one_worker_runs_the_others(redis_url, mode):
    # One worker, four big leaves that each wait for a small leaf queued behind them: a worker that
    # waited in place would let every wait run out (and write every big output).
    settings = {"compute_options": {"mode": mode, "workers": 1}, "locality": {"delayed_io_seconds": 10}}
    graph = parked_graph(4)
    keys = [f"join-{i}" for i in range(4)]
    with wukong.Client(storage=redis_url, **settings) as client:
        started = time.monotonic()
        assert client.get(graph, keys) == dask.get(graph, keys)
        assert time.monotonic() - started < 10  # no wait ran its course
        metrics = client.last_job.metrics.totals
    assert metrics.delayed_io_timeouts == 0
    assert metrics.objects_kept_local == 4
    assert metrics.data_bytes_written < BIG * 8  # no big output written
