"""Stragglers: a speculative backup races an invocation that runs too long; the first to end wins.

With ``speculate_after`` the local pool starts a backup of a payload that has run that many times
the median (and at least ``speculate_min_seconds``), stops the loser when the winner ends, and the
executors count through guarded increments so that neither counts anything twice. Each test checks
the answer against Dask's synchronous scheduler and that no key is left.
"""

from __future__ import annotations

import operator
import time
from pathlib import Path

import dask
import pytest

import wukong
from wukong.backends.compute.base import Delivery, DeliveryModel
from wukong.backends.compute.local import LocalCompute
from wukong.core.attempts import Attempt
from wukong.core.backends import create_storage
from wukong.core.invocation import ExecutorOptions, Invocation
from wukong.core.keys import JobKeys

SPECULATION = {"workers": 2, "speculate_after": 3, "speculate_min_seconds": 0.5}


@pytest.fixture(params=["redis", "embedded"])
def client(request: pytest.FixtureRequest) -> wukong.Client:
    storage = request.getfixturevalue("redis_url") if request.param == "redis" else "embedded"
    with wukong.Client(storage=storage, compute_options=SPECULATION, timeout=120) as client:
        assert client.get({"x": 1, "y": (abs, "x")}, "y") == 1  # the workers are up
        yield client
        client.settle()
        assert client.stores.list_keys("wukong/") == [], "the job left keys behind"


def _slow_the_first_time(marker: str, value: int) -> int:
    """Stuck on its first run (a straggling machine); quick on any later one."""
    if not Path(marker).exists():
        Path(marker).touch()
        time.sleep(60)
    return value * 10


def _takes(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value + 1


def test_a_stuck_invocation_is_overtaken_by_its_backup(client, tmp_path):
    marker = str(tmp_path / "stuck")
    graph = {("leaf", i): (_takes, 0.05, i) for i in range(6)}
    graph["stuck"] = (_slow_the_first_time, marker, 7)
    # The stuck task fans out, so both attempts reach the same hand-off: one counts it in.
    graph.update({("after", i): (operator.add, "stuck", i) for i in range(3)})
    graph["total"] = (sum, [*[("leaf", i) for i in range(6)], *[("after", i) for i in range(3)]])
    begun = time.perf_counter()
    assert client.get(graph, "total") == dask.get({**graph, "stuck": 70}, "total")
    assert time.perf_counter() - begun < 20, "the backup did not overtake the stuck attempt"
    assert client.compute_backend.backups >= 1


def test_a_backup_that_loses_lets_go(client):
    # Each run takes 1.5 s: the backup starts at 0.5 s and loses; it is stopped, and its retry
    # only releases its part of the live count.
    graph = {"a": (_takes, 1.5, 1), "b": (_takes, 0.05, "a"), "c": (operator.mul, "b", 3)}
    assert client.get(graph, "c") == dask.get(graph, "c")
    assert client.compute_backend.backups >= 1
    assert client.get(graph, "c") == dask.get(graph, "c")  # the pool goes on after a race


def test_speculation_needs_a_store_with_conditional_increments(memcached_url):
    with pytest.raises(wukong.ConfigError, match="conditional increments"):
        wukong.Client(storage=memcached_url, compute_options=SPECULATION)


def test_speculation_is_off_by_default():
    assert not LocalCompute().capabilities.speculates
    assert LocalCompute(speculate_after=2).capabilities.speculates


class _BackupContext:
    """The executor context the local pool gives a speculative backup (or its retry)."""

    def __init__(self, retry: bool = False):
        self.retry = retry

    def delivery(self) -> Delivery:
        return Delivery(retry=self.retry, backup=True)

    def park(self, resume) -> bool:
        raise AssertionError("a backup that does not run waits for nothing")

    def invoke(self, payloads) -> None:
        raise AssertionError("a backup that does not run invokes nothing")

    def remaining_seconds(self) -> None:
        return None


def test_a_backup_joins_the_live_count_only_while_the_job_is_alive(redis_url):
    # The moment that is hard to hit end to end: the first attempt ends the job (live count 0) just
    # as its backup starts. The backup must not count itself in, or the client, already removing
    # the job's keys, would leave its count behind.
    store = create_storage(redis_url, {})
    keys = JobKeys("backup-race")
    invocation = Invocation(keys.job, b"", 3, 0, ExecutorOptions(delivery=DeliveryModel.SPECULATIVE))
    try:
        store.put(keys.alive, b"1")  # the client has read the count as 0 and is removing keys
        assert Attempt(invocation, store, _BackupContext()).begin() is False
        assert store.list_keys(keys.prefix) == [keys.alive]

        store.increment(keys.live_executors, 1)  # the first attempt runs, covered by its invoker
        backup = Attempt(invocation, store, _BackupContext())
        assert backup.begin() is True
        assert store.increment(keys.live_executors, 0) == 2
        backup.end({keys.metric("tasks_run"): 1}, None)  # the backup wins
        assert store.increment(keys.live_executors, 0) == 1
        # Its retry (the pool stopped it after it won) finds the race won and lets go of nothing more.
        assert Attempt(invocation, store, _BackupContext(retry=True)).begin() is False
        assert store.increment(keys.live_executors, 0) == 1
        assert store.increment(keys.metric("tasks_run"), 0) == 1
    finally:
        store.delete_many(store.list_keys(keys.prefix))
        store.close()
