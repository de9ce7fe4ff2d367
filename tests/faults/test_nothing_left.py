"""Nothing left behind on a busy machine: jobs that time out, fail or lose a worker, CPU starved.

On a starved CPU, executors outlive their job: the client gives up waiting for them
(``cleanup_timeout``) and removes the job's keys while they still run. Whatever they write after
that must not stay (see ``wukong.core.keys`` and ``wukong.core.fence``). Each test starts three
busy-loop processes on this 2-core machine, runs the fault on every store, then stops the workers
(the keys' only writers) and only then looks for leftovers, so a late write cannot hide.
"""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import dask
import pytest

import wukong
from tests.conftest import s3_data_settings


def _storage(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    if name == "embedded":
        return {"storage": "embedded"}
    if name == "redis-sharded":
        return {"storage": name, "storage_options": {"urls": request.getfixturevalue("redis_shards")}}
    if name == "redis-cluster":
        return {"storage": name, "storage_options": {"url": request.getfixturevalue("redis_cluster_url")}}
    if name == "s3+memcached":
        s3 = s3_data_settings(request.getfixturevalue("s3_endpoint"))
        return {"storage": request.getfixturevalue("memcached_url"), **s3}
    return {"storage": request.getfixturevalue(f"{name}_url")}


STORES = ["embedded", "redis", "redis-sharded", "redis-cluster", "memcached", "s3+memcached"]


@pytest.fixture(scope="module")
def busy_cpu() -> Iterator[None]:
    """Three processes spinning on this 2-core machine for the module's tests, stopped after."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def _step(value: int) -> int:
    time.sleep(0.05)
    return value + 1


def _slow(value: Any, seconds: float) -> Any:
    time.sleep(seconds)
    return value


def _slow_here(value: Any, seconds: float, directory: str) -> Any:
    """``_slow``, after leaving a file named by this worker's pid in ``directory``."""
    open(os.path.join(directory, str(os.getpid())), "w").close()
    return _slow(value, seconds)


def _kill_once_busy(pid: int, directory: str) -> None:
    """SIGKILL worker ``pid`` once it runs a task (a busy machine may start it late)."""
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(directory, str(pid))) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)


def _broken(value: Any) -> Any:
    raise ValueError("broken on purpose")


def _chains(length: int = 60) -> dict[Any, Any]:
    """Two chains of short tasks that keep their inputs in memory, and a long task in one."""
    graph: dict[Any, Any] = {}
    for chain in range(2):
        graph[(chain, 0)] = (_step, chain)
        graph.update({(chain, i): (_step, (chain, i - 1)) for i in range(1, length)})
    graph[(1, length // 2)] = (_slow, (1, length // 2 - 1), 3.0)
    graph["end"] = (operator.add, (0, length - 1), (1, length - 1))
    return graph


def _assert_nothing_left(client: wukong.Client) -> None:
    """Stop the workers (the only writers left), then look: no job key may remain."""
    client.settle()
    client.compute_backend.close()
    time.sleep(0.5)  # a reply in flight from a worker that was stopping
    assert client.stores.list_keys("wukong/") == [], "a job's keys outlived it"


@pytest.mark.parametrize("store", STORES)
def test_a_timed_out_job_leaves_nothing_on_a_busy_machine(request, busy_cpu, store):
    settings = {"timeout": 1.0, "cleanup_timeout": 0.5, "compute_options": {"workers": 2}}
    with wukong.Client(**_storage(request, store), **settings) as client:
        with pytest.raises(wukong.JobTimeoutError, match="timeout of 1"):
            client.get(_chains(), "end")
        _assert_nothing_left(client)


@pytest.mark.parametrize("store", STORES)
def test_a_failed_job_leaves_nothing_on_a_busy_machine(request, busy_cpu, store):
    # The failure ends the job while a sibling sleeps and a chain runs on; the client waits half a
    # second for them, then removes the job's keys under them.
    graph = _chains()
    graph["bad"] = (_broken, (0, 5))
    graph["all"] = (sum, ["end", "bad"])
    settings = {"cleanup_timeout": 0.5, "timeout": 60, "compute_options": {"workers": 2}}
    with wukong.Client(**_storage(request, store), **settings) as client:
        with pytest.raises(ValueError, match="broken on purpose"):
            client.get(graph, "all")
        _assert_nothing_left(client)


@pytest.mark.parametrize("store", STORES)
def test_a_job_that_loses_a_worker_is_exact_and_leaves_nothing_on_a_busy_machine(
    request, busy_cpu, store, tmp_path
):
    graph = {("a", i): (_slow_here, i, 0.3, str(tmp_path)) for i in range(6)}
    graph["total"] = (sum, [("a", i) for i in range(6)])
    with wukong.Client(**_storage(request, store), compute_options={"workers": 2}, timeout=120) as client:
        assert client.get({"x": 1, "y": (abs, "x")}, "y") == 1  # the workers are up
        victim = client.compute_backend.worker_pids[0]
        killer = threading.Thread(target=_kill_once_busy, args=(victim, str(tmp_path)))
        killer.start()
        assert client.get(graph, "total") == dask.get(graph, "total")
        killer.join()
        assert client.compute_backend.retries >= 1, "the kill landed after the job"
        _assert_nothing_left(client)
