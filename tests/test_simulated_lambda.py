"""The simulated Lambda: its model does what it says, and it agrees with the local Invoke API server.

The engine tests run on it too (``simulated-lambda-redis`` in conftest). Here: the latency model on a
chain of invocations, cold starts, the concurrency limit, a thousand executors at once, the time
limit, bandwidth, duplicate deliveries, the centralized strawman, and the fidelity check.
"""

from __future__ import annotations

import operator
import statistics
import threading
import time

import dask
import pytest

import wukong
from tests.conftest import lambda_settings
from wukong.backends.compute.simulated import SimulatedLambda
from wukong.errors import ComputeError
from wukong.testing.workloads import add_after, tree_reduction


class _Chain:
    """A handler that invokes the next link until ``links`` have run, noting when each started."""

    def __init__(self, platform: SimulatedLambda, links: int):
        self.platform, self.links = platform, links
        self.started: list[float] = []
        self.done = threading.Event()

    def __call__(self, payload: bytes, context) -> None:
        self.started.append(time.monotonic())
        link = int(payload)
        if link + 1 < self.links:
            context.invoke([str(link + 1).encode()])
        else:
            self.done.set()

    def run(self) -> float:
        """Seconds from the first Invoke call to the last link's start."""
        self.platform.start(self)
        try:
            begun = time.monotonic()
            self.platform.invoke([b"0"])
            assert self.done.wait(60)
            return self.started[-1] - begun
        finally:
            self.platform.close()


@pytest.mark.parametrize("spread", [0.0, 0.3])
def test_a_chain_of_invocations_takes_its_modelled_time(spread):
    links = 40
    platform = SimulatedLambda(invoke_ms=50, call_ms=10, latency_spread=spread, cold_start_ms=200, seed=7)
    elapsed = _Chain(platform, links).run()
    # Each link costs one invocation latency; only the first pays a cold start (then the
    # container of the link before is warm again when the next event is due).
    modelled = links * 0.050 + 0.200
    assert abs(elapsed - modelled) <= 0.10 * modelled, (elapsed, modelled)
    assert platform.stats.cold_starts == 1
    assert platform.stats.invocations == platform.stats.deliveries == links


def test_latencies_follow_the_configured_distribution():
    platform = SimulatedLambda(invoke_ms=50, latency_spread=0.3, seed=1)
    draws = [platform._draw(50) for _ in range(4000)]
    assert statistics.mean(draws) == pytest.approx(0.050, rel=0.03)
    assert statistics.stdev(draws) / statistics.mean(draws) == pytest.approx(0.3, rel=0.1)
    assert min(draws) > 0
    constant = SimulatedLambda(latency_spread=0)
    assert {constant._draw(50) for _ in range(10)} == {0.05}


def _sleepers(count: int, seconds: float) -> dict:
    graph: dict = {("sleep", i): (add_after, seconds, i, 0) for i in range(count)}
    graph["total"] = (sum, list(graph))
    return graph


def test_a_thousand_executors_at_once():
    # Long enough that the first are still asleep when the last start: starting an executor costs
    # a few ms of the one interpreter, so starting a thousand takes seconds.
    graph = _sleepers(1000, 5.0)
    with wukong.Client(compute="simulated-lambda", storage="ideal", timeout=120) as client:
        begun = time.perf_counter()
        assert client.get(graph, "total") == sum(range(1000))
        elapsed = time.perf_counter() - begun
        stats = client.compute_backend.stats
    assert stats.peak_concurrency >= 1000
    # In parallel: five seconds of sleep, plus invoking 1,000 executors from the client (16 calls
    # at a time, 10 ms each: 0.6 s) and starting them; one after another it would take 5,000 s.
    assert elapsed < 30, elapsed


def test_the_concurrency_limit_queues_events():
    graph = _sleepers(40, 0.2)
    options = {"concurrency": 8, "invoke_ms": 5, "call_ms": 1, "cold_start_ms": 0}
    with wukong.Client(compute="simulated-lambda", compute_options=options, storage="ideal") as client:
        begun = time.perf_counter()
        assert client.get(graph, "total") == sum(range(40))
        elapsed = time.perf_counter() - begun
        stats = client.compute_backend.stats
    assert stats.peak_concurrency == 8
    assert stats.throttled >= 30
    assert elapsed >= 40 / 8 * 0.2  # five waves of eight


def test_running_past_the_time_limit_fails_the_job():
    options = {"time_limit_seconds": 0.3, "invoke_ms": 5, "call_ms": 1}
    with wukong.Client(
        compute="simulated-lambda", compute_options=options, storage="ideal", timeout=30
    ) as client:
        with pytest.raises(ComputeError, match=r"time limit of 0\.3 s"):
            client.get({"slow": (add_after, 1.0, 1, 2)}, "slow")
        client.settle()
        assert client.stores.list_keys("wukong/") == []


def test_bandwidth_limits_what_executors_move():
    # 2 MB crosses storage from the source's executor to each of two invoked readers.
    graph = {
        "blob": (bytes, 2_000_000),
        "a": (len, "blob"),
        "b": (len, "blob"),
        "c": (len, "blob"),
        "total": (sum, ["a", "b", "c"]),
    }
    times = {}
    for bandwidth in (None, 4.0):
        options = {"bandwidth_mb_per_second": bandwidth, "invoke_ms": 5, "call_ms": 1, "cold_start_ms": 0}
        with wukong.Client(
            compute="simulated-lambda",
            compute_options=options,
            storage="ideal",
        ) as client:
            begun = time.perf_counter()
            assert client.get(graph, "total") == 6_000_000
            times[bandwidth] = time.perf_counter() - begun
            moved = client.last_job.metrics.totals
    # At 4 MB/s: the write (0.5 s), then two readers at once (0.5 s each, in parallel).
    assert moved.data_bytes_written >= 2_000_000 and moved.data_bytes_read >= 4_000_000
    assert times[4.0] >= 1.0 > times[None]


def test_every_delivery_repeated_runs_each_task_once():
    graph, root = tree_reduction(64, leaf_tasks=True)
    options = {"duplicate_rate": 1.0, "invoke_ms": 5, "call_ms": 1, "cold_start_ms": 0}
    with wukong.Client(compute="simulated-lambda", compute_options=options, storage="ideal") as client:
        assert client.get(graph, root) == dask.get(graph, root)
        stats = client.compute_backend.stats
        records = client.last_job.metrics.tasks
        client.settle()
        assert client.stores.list_keys("wukong/") == []
    assert stats.duplicates == stats.invocations == 64
    assert sorted(record.key for record in records) == sorted(str(key) for key in graph)


@pytest.mark.parametrize(
    "compute",
    [
        {"compute": "simulated-lambda", "compute_options": {"invoke_ms": 5, "call_ms": 1}},
        {"compute": "local"},
    ],
    ids=["simulated", "local"],
)
def test_centralized_strawman_invokes_one_executor_per_task(compute, redis_url):
    graph, root = tree_reduction(64, delay_ms=1)
    # A chain too: decentralized executors would run it in one executor and store nothing.
    chain = {("x", 0): 1, **{("x", i): (operator.add, ("x", i - 1), 1) for i in range(1, 10)}}
    with wukong.Client(**compute, storage=redis_url, scheduling="centralized", timeout=60) as client:
        assert client.get(graph, root) == dask.get(graph, root)
        report = client.last_job
        assert report.metrics.totals.executors == report.tasks == 63
        assert report.metrics.summary.invocations == 0  # the client invoked them all
        assert client.get(chain, ("x", 9)) == dask.get(chain, ("x", 9)) == 10
        assert client.last_job.metrics.totals.executors == client.last_job.tasks == 9  # x0 is data
        client.settle()
        assert client.stores.list_keys("wukong/") == []


def _two_level_fan_out() -> tuple[dict, str]:
    """source -> 4 middles -> 3 leaves each -> total: 3 + 4 x 2 invocations, however tasks race."""
    graph: dict = {"source": (operator.add, 1, 2)}
    graph.update({("middle", i): (operator.mul, "source", i + 1) for i in range(4)})
    graph.update({("leaf", i, j): (operator.add, ("middle", i), j) for i in range(4) for j in range(3)})
    graph["total"] = (sum, [("leaf", i, j) for i in range(4) for j in range(3)])
    return graph, "total"


def test_fidelity_with_the_local_invoke_api_server(lambda_endpoint, redis_url):
    """The same DAG, simulated and through Lambda's Invoke API: same answers, tasks, invocations."""
    graph, root = _two_level_fan_out()
    seen = {}
    for name, settings in {
        "simulated": {"compute": "simulated-lambda"},
        "invoke api": lambda_settings(lambda_endpoint),
    }.items():
        with wukong.Client(**settings, storage=redis_url, timeout=60) as client:
            result = client.get(graph, root)
            report = client.last_job
            summary = report.metrics.summary
            seen[name] = (result, report.tasks, report.leaves, summary.tasks, summary.invocations)
    assert seen["simulated"] == seen["invoke api"]
    assert seen["simulated"][0] == dask.get(graph, root)
    assert seen["simulated"][4] == 3 + 4 * 2
