"""Worker processes killed while a job runs: their invocations are retried and the result is exact.

The local pool's dispatcher sees a worker die, starts another, and delivers again the payloads the
dead one had started; the retried executors replay their crashed attempts (see
``wukong.core.executor``). Kills land at random moments, so over the runs they hit executors in a
task, in storage calls and between them. Every test checks the answer against Dask's synchronous
scheduler, the number of retries, and that the job left no key behind.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import dask
import pytest

import wukong
from wukong.backends.compute.local import LocalCompute
from wukong.testing.workloads import layered, nap

STORES = ["redis", "memcached"]


@pytest.fixture(params=STORES)
def storage(request: pytest.FixtureRequest) -> str:
    """A real server's URL: one that answers with scripts (Redis), one with compare-and-swap."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def client(storage: str) -> wukong.Client:
    with wukong.Client(storage=storage, compute_options={"workers": 2}, timeout=120) as client:
        assert client.get({"x": 1, "y": (abs, "x")}, "y") == 1  # the workers are up
        yield client
        client.settle()
        assert client.stores.list_keys("wukong/") == [], "the job left keys behind"


def _slow(value: int, seconds: float = 1.0) -> int:
    time.sleep(seconds)
    return value


def _kill_at(pool: wukong.Client, delays: list[float], rng: random.Random) -> threading.Thread:
    """Kill a random worker after each delay, in a thread."""

    def kill() -> None:
        for delay in delays:
            time.sleep(delay)
            pids = pool.compute_backend.worker_pids
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)

    killer = threading.Thread(target=kill)
    killer.start()
    return killer


def test_a_worker_killed_mid_task_is_retried_exactly(client):
    graph = {"a": (_slow, 1), "b": (_slow, 2), "c": (_slow, 3), "total": (sum, ["a", "b", "c"])}
    victim = client.compute_backend.worker_pids[0]
    killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
    killer.start()
    begun = time.perf_counter()
    assert client.get(graph, "total") == 6
    killer.join()
    assert client.compute_backend.retries == 1
    assert victim not in client.compute_backend.worker_pids
    assert time.perf_counter() - begun < 15


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_workers_killed_at_random_moments(client, seed):
    rng = random.Random(seed)
    graph, root = layered(width=24, depth=6)
    before = set(client.compute_backend.worker_pids)
    killer = _kill_at(client, [rng.uniform(0.2, 0.9) for _ in range(3)], rng)
    try:
        answer = client.get(graph, root)
    finally:
        killer.join()
    assert answer == dask.get(graph, root)
    assert before - set(client.compute_backend.worker_pids), "no kill landed"


def _kills_its_worker_once(marker: str, value: int) -> int:
    if not Path(marker).exists():
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return value * 10


def _kills_its_worker(value: int) -> int:
    os._exit(3)


def test_a_task_that_crashed_once_succeeds_on_its_retry(client, tmp_path):
    marker = str(tmp_path / "crashed")
    graph = {"x": 4, "y": (_kills_its_worker_once, marker, "x"), "z": (nap, "y", "x")}
    assert client.get(graph, "z") == dask.get(graph, "z") == 45
    assert client.compute_backend.retries == 1


def test_a_task_that_always_crashes_fails_the_job_clearly(client):
    graph = {"x": 4, "y": (_kills_its_worker, "x"), "z": (nap, "y", "x")}
    begun = time.perf_counter()
    with pytest.raises(wukong.ComputeError, match=r"killed its worker 3 times .*exit code 3"):
        client.get(graph, "z")
    assert time.perf_counter() - begun < 30
    client.settle()
    assert client.get({"a": 1, "b": (nap, "a")}, "b") == 2  # a new pool


class _DiesOnArrival:
    """A handler that kills the worker process that unpickles it, before it asks for work."""

    def __call__(self, payload: bytes, context: object) -> None:
        raise AssertionError("never runs")

    def __reduce__(self):
        return os._exit, (7,)


def test_workers_that_die_as_they_start_fail_clearly():
    compute = LocalCompute(workers=1)
    compute.start(_DiesOnArrival())
    try:
        compute.invoke([b"a payload"])
        deadline = time.perf_counter() + 30
        with pytest.raises(wukong.ComputeError, match=r"die as they start .*exit code 7"):
            while time.perf_counter() < deadline:
                compute.check()
                time.sleep(0.1)
    finally:
        compute.close()
