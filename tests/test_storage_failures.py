"""Stores that are down, die mid-job, or get an object too big: clear errors, no hang, usable client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dask
import numpy as np
import pytest

import wukong
from tests.conftest import s3_data_settings
from wukong.testing.servers import Server, free_port, memcached_server, redis_server


def _dead_settings(port: int) -> dict[str, dict[str, Any]]:
    """For each store, settings that point one of its servers at ``port``, where nothing listens."""
    return {
        "redis": {"storage": f"redis://127.0.0.1:{port}/0", "storage_options": {"connect_timeout": 1}},
        "memcached": {"storage": f"memcached://127.0.0.1:{port}", "storage_options": {"connect_timeout": 1}},
        "redis-cluster": {
            "storage": "redis-cluster",
            "storage_options": {"url": f"redis://127.0.0.1:{port}"},
        },
        "s3": {"storage": "embedded", **s3_data_settings(f"http://127.0.0.1:{port}")},
    }


@pytest.mark.parametrize("store", ["redis", "memcached", "redis-cluster", "s3"])
def test_unreachable_store_fails_at_start_naming_its_address(store):
    port = free_port()
    started = time.perf_counter()
    with pytest.raises(wukong.StorageError, match=f"127.0.0.1:{port}"):
        wukong.Client(**_dead_settings(port)[store])
    assert time.perf_counter() - started < 30


def test_one_dead_shard_fails_at_start_naming_it(redis_url):
    port = free_port()
    dead = f"redis://127.0.0.1:{port}/0"
    with pytest.raises(wukong.StorageError, match=dead):
        wukong.Client(
            storage="redis-sharded", storage_options={"urls": [redis_url, dead], "connect_timeout": 1}
        )


def _step(value: int) -> int:
    time.sleep(0.05)
    return value + 1


@pytest.fixture(params=["redis", "memcached"])
def own_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A server for one test, which the test may stop and start again."""
    start: Callable[[], Any] = redis_server if request.param == "redis" else memcached_server
    with start() as server:
        yield server


def test_store_dying_mid_job_fails_the_job_and_the_client_recovers(own_server):
    # Two chains of about 3 s: both executors are mid-chain when the server dies, none waits in a
    # queue, and both end (failing to write) before the server comes back.
    graph: dict[Any, Any] = {}
    for chain in range(2):
        graph[(chain, 0)] = (_step, chain)
        graph.update({(chain, i): (_step, (chain, i - 1)) for i in range(1, 60)})
    graph["end"] = (sum, [(0, 59), (1, 59)])
    with wukong.Client(storage=own_server.url, timeout=60, cleanup_timeout=6) as client:
        killer = threading.Timer(1.0, own_server.process.kill)
        killer.start()
        started = time.perf_counter()
        with pytest.raises(wukong.StorageError, match=own_server.url.split("/")[2]):
            client.get(graph, "end")
        assert time.perf_counter() - started < 30, "the job did not fail promptly"
        killer.join()
        time.sleep(1)
        own_server.process.start()  # back, empty: the clean-up removes what executors still write
        client.settle()
        small = {"a": 1, "b": (_step, "a"), "c": (_step, "a"), "d": (sum, ["b", "c"])}
        assert client.get(small, "d") == 4
        assert client.stores.list_keys("wukong/") == []


def _chains(length: int) -> dict[Any, Any]:
    graph: dict[Any, Any] = {}
    for chain in range(2):
        graph[(chain, 0)] = (_step, chain)
        graph.update({(chain, i): (_step, (chain, i - 1)) for i in range(1, length)})
    graph["end"] = (sum, [(0, length - 1), (1, length - 1)])
    return graph


def test_store_restarted_empty_mid_job_fails_clearly_and_leaves_nothing(own_server):
    # The server comes back at once, empty, while both executors are mid-chain: they go on writing
    # into it (outputs, counters, count-outs), but the job's state is gone. The client must notice,
    # not wait forever for records that will never come, and sweep what the executors write after.
    graph = _chains(60)
    with wukong.Client(storage=own_server.url, timeout=60, cleanup_timeout=6) as client:

        def restart() -> None:
            own_server.process.kill()
            own_server.process.start()

        restarter = threading.Timer(1.0, restart)
        restarter.start()
        started = time.perf_counter()
        with pytest.raises(wukong.StorageError) as failure:
            client.get(graph, "end")
        restarter.join()
        assert time.perf_counter() - started < 30, "the job did not fail promptly"
        assert own_server.url.split("/")[2] in str(failure.value) or isinstance(
            failure.value, wukong.JobLostError
        ), failure.value
        client.settle()  # the sweep ends once the executors have stopped writing
        assert client.stores.list_keys("wukong/") == []
        assert client.get(_chains(3), "end") == 7
        assert client.stores.list_keys("wukong/") == []


def test_object_over_the_store_limit_names_task_and_size(redis_url):
    graph = {"big": (np.zeros, 300_000), "total": (np.sum, "big"), "shape": (np.shape, "big")}
    with wukong.Client(storage=redis_url, storage_options={"max_object_bytes": 1_000_000}) as client:
        with pytest.raises(wukong.StorageError, match=r"task 'big' is 2,400,\d+ bytes.*1,000,000 bytes"):
            client.get(graph, ["total", "shape"])
        client.settle()
        assert client.stores.list_keys("wukong/") == []


def test_object_over_the_memcached_item_size_is_chunked(memcached_url):
    graph = {"big": (np.arange, 3_000_000), "total": (np.sum, "big"), "last": (lambda a: a[-1], "big")}
    with wukong.Client(storage=memcached_url) as client:
        assert client.get(graph, ["total", "last"]) == (sum(range(3_000_000)), 2_999_999)
        assert client.stores.list_keys("wukong/") == []


def test_a_schedule_page_over_the_store_limit_names_its_largest_task_and_runs_nothing(redis_url):
    # Values inside the graph travel in the schedule pages: eight of 200 kB make one of 1.6 MB.
    graph = {f"t{i}": (len, bytes(200_000 + i)) for i in range(8)}
    graph["total"] = (sum, [f"t{i}" for i in range(8)])
    limited = {"storage": redis_url, "storage_options": {"max_object_bytes": 1_000_000}}
    with wukong.Client(**limited) as client:
        expected = r"page 0 \(9 tasks\) is 1,60\d,\d+ bytes.*'t7', takes 200,"
        with pytest.raises(wukong.GraphError, match=expected):
            client.get(graph, "total")
        client.settle()
        assert client.stores.list_keys("wukong/") == []
    with wukong.Client(**limited, page_tasks=2) as client:
        assert client.get(graph, "total") == dask.get(graph, "total")


def test_a_later_page_over_the_store_limit_fails_the_job_after_its_first_leaves_started(
    redis_url, monkeypatch
):
    # The first leaves start once the first page is stored; the third page (seven values of 200 kB)
    # is found too big while they run: the job fails with the page's error and leaves nothing.
    graph: dict[str, Any] = {f"s{i}": (len, b"x" * i) for i in range(16)}
    graph |= {f"b{i}": (len, bytes(200_000 + i)) for i in range(8)}
    graph["largest"] = (max, *(f"s{i}" for i in range(16)), *(f"b{i}" for i in range(8)))  # leaves in order
    limited = {"storage": redis_url, "storage_options": {"max_object_bytes": 1_000_000}}
    with wukong.Client(**limited, page_tasks=8) as client:
        invoked: list[int] = []
        invoke = client.compute_backend.invoke

        def counted(payloads: Any) -> None:  # the real invocation, counted
            invoked.append(len(payloads))
            invoke(payloads)

        monkeypatch.setattr(client.compute_backend, "invoke", counted)
        with pytest.raises(
            wukong.GraphError, match=r"page 2 \(8 tasks\) is 1,40\d,\d+ bytes.*'b6', takes 200,"
        ):
            client.get(graph, "largest")
        assert invoked == [7], "the leaves of the first page, and no other, were invoked"
        client.settle()
        assert client.last_job.metrics.totals.tasks_run <= 7
        assert client.stores.list_keys("wukong/") == []
