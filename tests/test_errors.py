"""A failing task, a bad graph, an unpicklable function, a timeout: clear errors, no keys left."""

from __future__ import annotations

import operator
import threading
import time

import dask
import pytest

import wukong
from wukong.core.graph import PLAN_BYTES_PER_TASK


class CustomError(Exception):
    pass


def fail(*args):
    raise CustomError("this task is broken")


def slow(x, seconds=2.0):
    time.sleep(seconds)
    return x


def test_task_exception_reaches_the_client_with_key_and_traceback(client):
    graph = {"a": 1, "b": (fail, "a"), "c": (operator.add, "b", 1)}
    with pytest.raises(CustomError, match="this task is broken") as caught:
        client.get(graph, "c")
    note = "\n".join(caught.value.__notes__)
    assert "task 'b'" in note
    assert "remote traceback" in note and "in fail" in note
    assert client.last_job.error.startswith("CustomError")


def test_failure_does_not_wait_for_slow_siblings(client):
    graph = {
        "a": (abs, 1),
        "slow": (slow, "a", 3.0),
        "bad": (fail, "a"),
        "end": (operator.add, "slow", "bad"),
    }
    started = time.perf_counter()
    with pytest.raises(CustomError):
        client.get(graph, "end")
    # The sibling sleeps 3 s; the error must not wait for it (clean-up does, in the background).
    assert time.perf_counter() - started < 2.5


def test_exception_that_cannot_travel_becomes_task_error(client):
    def raise_unpicklable():
        error = ValueError("has a lock")
        error.lock = threading.Lock()
        raise error

    with pytest.raises((wukong.TaskError, ValueError)) as caught:
        client.get({"x": (raise_unpicklable,)}, "x")
    if isinstance(caught.value, wukong.TaskError):
        assert caught.value.key == "x"
        assert caught.value.exception_type == "ValueError"
        assert "has a lock" in str(caught.value)
    elif not client.stores.objects_stored_as_is:
        pytest.fail("an unpicklable exception cannot have crossed a serializing store")


def raise_huge(size):
    raise ValueError("x" * size)


def test_huge_exception_still_reaches_the_client(client):
    # 5 MB of message would not fit a memcached item: the error arrives as a TaskError, cut short.
    with pytest.raises(wukong.TaskError, match=r"(?s)ValueError.*characters left out") as caught:
        client.get({"n": 5_000_000, "boom": (raise_huge, "n")}, "boom")
    assert caught.value.key == "boom"
    assert len(str(caught.value)) < 300_000


def test_unpicklable_function_is_named_before_anything_runs(client):
    lock = threading.Lock()

    def uses_lock(x):
        with lock:
            return x

    with pytest.raises(wukong.SerializationError, match="task 'b'"):
        client.get({"a": 1, "b": (uses_lock, "a")}, "b")


def test_unpicklable_result_is_a_clear_error(client):
    graph = {"a": (threading.Lock,), "b": (operator.truth, "a"), "c": (operator.truth, "a")}
    if client.stores.objects_stored_as_is:
        assert client.get(graph, ["b", "c"]) == dask.get(graph, ["b", "c"]) == (True, True)
        return
    with pytest.raises(wukong.SerializationError, match=r"task 'a'.*result"):
        client.get(graph, ["b", "c"])


def test_missing_key_is_a_key_error(client):
    with pytest.raises(KeyError):
        client.get({"a": 1}, "nope")


def test_cycle_names_its_keys(client):
    graph = {"a": (operator.neg, "c"), "b": (operator.neg, "a"), "c": (operator.neg, "b"), "d": 1}
    with pytest.raises(wukong.GraphError, match="cycle") as caught:
        client.get(graph, "a")
    assert set(caught.value.keys) == {"a", "b", "c"}


def test_client_stays_usable_after_errors(client):
    with pytest.raises(CustomError):
        client.get({"a": (fail,)}, "a")
    assert client.get({"a": 1, "b": (operator.add, "a", 1)}, "b") == 2


def test_job_timeout(redis_url):
    with wukong.Client(storage=redis_url, compute_options={"mode": "threads"}, timeout=0.5) as client:
        with pytest.raises(wukong.JobTimeoutError, match=r"timeout of 0\.5 s"):
            client.get({"a": 1, "b": (slow, "a", 1.5)}, "b")
        client.settle()
        assert client.stores.list_keys("wukong/") == []


def _step(value: int) -> int:
    time.sleep(0.05)
    return value + 1


@pytest.mark.parametrize("long_task", [False, True])
def test_a_timed_out_job_stops_its_executors(redis_url, long_task):
    # Chains hold their inputs in memory, so they never read the failure mark with an input; they
    # must look for it as they go, or run on past the clean-up and leave keys behind. A long task
    # must not write its result once the client has given up waiting for it.
    graph: dict = {}
    for chain in range(2):
        graph[(chain, 0)] = (_step, chain)
        graph.update({(chain, i): (_step, (chain, i - 1)) for i in range(1, 100)})
    graph["end"] = (sum, [(0, 99), (1, 99)])
    if long_task:
        graph[(1, 50)] = (slow, (1, 49), 4.0)
    settings = {"compute_options": {"workers": 2}, "timeout": 1.0, "cleanup_timeout": 1.0}
    with wukong.Client(storage=redis_url, **settings) as client:
        begun = time.perf_counter()
        with pytest.raises(wukong.JobTimeoutError):
            client.get(graph, "end")
        client.settle()
        assert time.perf_counter() - begun < 5, "the executors ran on"
        time.sleep(4)  # past the end of the chains and the long task: what strays could write
        assert client.stores.list_keys("wukong/") == []


def test_a_job_longer_than_its_keys_live_fails_saying_so(redis_url):
    # Its keys would expire under it (a counter, then a wait for ever): it fails when they begin to.
    settings = {"compute_options": {"mode": "threads"}, "key_ttl": 1, "cleanup_timeout": 5}
    with wukong.Client(storage=redis_url, **settings) as client:
        with pytest.raises(wukong.JobTimeoutError, match=r"key_ttl = 1 s.*raise key_ttl"):
            client.get({"a": (abs, -1), "s": (slow, 1, 2.0), "b": (operator.add, "a", "s")}, "b")
        client.settle()
        assert client.stores.list_keys("wukong/") == []


def test_a_timeout_must_be_shorter_than_the_keys_lifetime():
    with pytest.raises(wukong.ConfigError, match=r"key_ttl \(60 s\) must exceed timeout"):
        wukong.Client(storage="ideal", compute_options={"mode": "threads"}, timeout=120, key_ttl=60)


def exit_with(code):
    raise SystemExit(code)


def test_a_task_that_raises_system_exit_hands_it_to_the_caller_as_dask_does(client):
    # Dask catches whatever a task raises (BaseException) and raises it in the caller; an
    # executor that let it escape would end without reporting, and the job would wait for ever.
    graph = {"a": 3, "b": (exit_with, "a"), "c": (operator.add, "b", 1)}
    with pytest.raises(SystemExit) as under_dask:
        dask.get(graph, "c")
    with pytest.raises(SystemExit) as under_wukong:
        client.get(graph, "c")
    assert under_wukong.value.args == under_dask.value.args == (3,)
    assert "task 'b'" in "\n".join(under_wukong.value.__notes__)


def test_a_job_whose_executors_all_ended_without_its_output_fails_naming_it(redis_url):
    # No executor left to report "b": waiting on would hang. Counting the one live executor out
    # by hand stands in for an executor that ends without reporting (a bug wukong must not hide).
    import redis

    server = redis.Redis.from_url(redis_url)
    settings = {"compute_options": {"mode": "threads"}, "cleanup_timeout": 5}

    def count_it_out() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            live = [key for key in server.keys("wukong/*/live") if int(server.get(key) or 0) > 0]
            if live:
                server.decr(live[0])
                return
            time.sleep(0.02)

    with wukong.Client(storage=redis_url, **settings) as client:
        meddler = threading.Thread(target=count_it_out)
        meddler.start()
        # Without the check the task would end, report, and the job would succeed.
        with pytest.raises(wukong.ComputeError, match=r"every executor has ended.*'b'"):
            client.get({"a": 1, "b": (slow, "a", 3.0)}, "b")
        meddler.join()
        client.settle()  # the pool restarts, as after any compute error: the task has ended
        assert client.stores.list_keys("wukong/") == []


def test_a_graph_over_the_plan_budget_is_refused_before_anything_runs():
    graph = {("x", i): (operator.add, i, 1) for i in range(3_000)}
    graph["total"] = (sum, [("x", i) for i in range(3_000)])
    budget = 1_000 * PLAN_BYTES_PER_TASK
    with wukong.Client(plan_memory_bytes=budget) as client:
        with pytest.raises(wukong.GraphError, match=r"3,001 tasks.*plan budget of .*plan_memory_bytes"):
            client.get(graph, "total")
        assert client.stores.list_keys("wukong/") == []
    with wukong.Client(plan_memory_bytes=4 * budget) as client:
        assert client.get(graph, "total") == dask.get(graph, "total")
