"""Dask's shuffles give Dask's answer on executors that share files and on executors that share none.

Dask groups a bag by ``hash(key)`` and, without a distributed client, shuffles through a partd
directory on disk. Each comparison is with Dask's synchronous scheduler, on the local pool (one
filesystem, disk shuffles), on the pool whose workers share nothing and on Lambda through the local
Invoke API server (shuffles as tasks), and on the simulated Lambda.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dask
import dask.bag as db
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import wukong
from wukong.backends.compute.base import ComputeCapabilities
from wukong.backends.compute.environment import HASH_SEED_VARIABLE
from wukong.backends.compute.local import LocalCompute
from wukong.errors import ConfigError, GraphError

from .conftest import session_client

SHARED = "processes-embedded"
APART = ["share-nothing-embedded", "lambda-s3+redis", "simulated-lambda-redis"]


@pytest.fixture(params=[SHARED, *APART])
def any_client(request, _clients) -> Iterator[wukong.Client]:
    yield from session_client(request, _clients, request.param)


@pytest.fixture(params=APART)
def apart(request, _clients) -> Iterator[wukong.Client]:
    """A client whose executors share no filesystem."""
    yield from session_client(request, _clients, request.param)


@pytest.fixture
def shared(request, _clients) -> Iterator[wukong.Client]:
    yield from session_client(request, _clients, SHARED)


def _pairs() -> db.Bag:
    # String keys: their hash depends on the process's hash seed.
    return db.from_sequence(range(200), npartitions=8).map(lambda x: (f"key-{x % 13}", x))


def _grouped(result: list) -> list:
    return sorted((key, sorted(values)) for key, values in result)


def _frames() -> tuple[dd.DataFrame, dd.DataFrame]:
    rows = 5_000
    left = pd.DataFrame({"a": np.arange(rows) % 97, "b": np.arange(rows), "c": np.linspace(0, 1, rows)})
    right = pd.DataFrame({"a": np.arange(97), "z": np.arange(97) * 2})
    return dd.from_pandas(left, npartitions=8), dd.from_pandas(right, npartitions=3)


SHUFFLES = {
    "shuffle": lambda left, right: left.shuffle("a"),
    "merge": lambda left, right: left.merge(right, on="a"),
    "set_index": lambda left, right: left.set_index("c"),
    "groupby_split_out": lambda left, right: left.groupby("a").b.sum(split_out=4).to_frame(),
    "groupby_apply": lambda left, right: (
        left.groupby("a").apply(lambda g: g.b.sum(), meta=("b", "i8")).to_frame()
    ),
}


def _same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    def rows(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.reset_index(drop=frame.index.name is None)  # positions differ by partitioning
        return frame.sort_values(list(frame.columns)).reset_index(drop=True)

    assert len(got) == len(want)
    pd.testing.assert_frame_equal(rows(got), rows(want))


def test_bag_groupby_puts_each_key_in_one_group(any_client):
    grouped = _pairs().groupby(lambda pair: pair[0])
    with dask.config.set({"dataframe.shuffle.method": "tasks"}):  # a disk groupby is refused apart
        tasks_grouped = _pairs().groupby(lambda pair: pair[0])
    if any_client.compute_backend.capabilities.shares_filesystem:
        want = _grouped(grouped.compute(scheduler="sync"))
        assert len(want) == 13
        assert _grouped(any_client.compute(grouped)) == want
    want = _grouped(tasks_grouped.compute(scheduler="sync"))  # pairs as tuples, not lists as on disk
    assert len(want) == 13
    assert _grouped(any_client.compute(tasks_grouped)) == want


def test_bag_foldby_and_distinct_of_strings(any_client):
    words = db.from_sequence([f"w{x % 17}" for x in range(300)], npartitions=6)
    folded = words.foldby(lambda w: w, lambda total, _: total + 1, 0, lambda a, b: a + b, 0)
    assert sorted(any_client.compute(folded)) == sorted(folded.compute(scheduler="sync"))
    assert sorted(any_client.compute(words.distinct())) == sorted(words.distinct().compute(scheduler="sync"))


@pytest.mark.parametrize("operation", list(SHUFFLES))
def test_dataframe_shuffles_equal_dask(any_client, operation):
    left, right = _frames()
    make = SHUFFLES[operation]
    want = make(left, right).compute(scheduler="sync")
    _same_rows(any_client.compute(make(left, right)), want)


def test_where_nothing_is_shared_a_dask_chosen_disk_shuffle_runs_as_tasks(apart):
    left, _ = _frames()
    assert dask.config.get("dataframe.shuffle.method", None) is None  # Dask would choose disk
    _same_rows(apart.compute(left.shuffle("a")), left.shuffle("a").compute(scheduler="sync"))
    assert apart.last_job.tasks > 8 * 2 + 1  # split and combine stages, not a partd barrier


@pytest.mark.parametrize("build", ["bag", "bag-in-a-directory", "dataframe"])
def test_a_disk_shuffle_where_nothing_is_shared_is_refused_before_it_runs(apart, build, tmp_path):
    # With a temporary_directory, Dask's bag hands partd.File to apply() instead of calling it.
    directory = str(tmp_path) if build == "bag-in-a-directory" else None
    with dask.config.set({"dataframe.shuffle.method": "disk", "temporary_directory": directory}):
        bag = build.startswith("bag")
        collection = _pairs().groupby(lambda pair: pair[0]) if bag else _frames()[0].shuffle("a")
        with pytest.raises(GraphError, match=r"dataframe\.shuffle\.method") as refused:
            apart.compute(collection)
    assert "partd" in str(refused.value)
    assert refused.value.keys  # the partd task, named


def test_a_disk_shuffle_on_one_filesystem_leaves_no_directory(shared, tmp_path):
    def build(directory: Path) -> tuple[dd.DataFrame, db.Bag]:
        # Dask reads both settings as it builds the graph.
        with dask.config.set({"dataframe.shuffle.method": "disk", "temporary_directory": str(directory)}):
            left, right = _frames()
            return left.merge(right, on="a"), _pairs().groupby(lambda pair: pair[0])

    (tmp_path / "dask").mkdir()
    merged, grouped = build(tmp_path / "dask")
    want_merge, want_groups = merged.compute(scheduler="sync"), _grouped(grouped.compute(scheduler="sync"))
    ours = tmp_path / "wukong"
    ours.mkdir()
    merged, grouped = build(ours)
    _same_rows(shared.compute(merged), want_merge)
    assert _grouped(shared.compute(grouped)) == want_groups
    assert list(ours.iterdir()) == []  # the partd directories went with their jobs


def test_worker_processes_hash_with_one_seed(shared):
    seed = shared.compute_backend.capabilities.hash_seed
    assert seed is not None and seed.isdigit()
    seeds = dask.delayed(lambda _: (os.environ.get(HASH_SEED_VARIABLE), hash("wukong")))
    seen = set(shared.compute(*[seeds(i) for i in range(16)]))
    assert len(seen) == 1 and next(iter(seen))[0] == seed


class _WrongSeed(LocalCompute):
    """A platform that says its executors hash with one seed and starts them with another."""

    name = "wrong-seed"

    def __init__(self, **options: object):
        super().__init__(**options)
        self.capabilities = ComputeCapabilities(retries_crashes=True, hash_seed="12345")


def test_an_executor_started_with_another_hash_seed_refuses_to_run(redis_url):
    with wukong.Client(compute="local", storage=redis_url, compute_options={"workers": 1}) as client:
        client.compute_backend.close()
        client.compute_backend = _WrongSeed(workers=1)
        client.compute_backend.start(wukong.core.executor.handle_invocation)
        with pytest.raises(ConfigError, match="PYTHONHASHSEED=12345"):
            client.get({"x": (sum, [1, 2])}, "x")
        client.settle()


def test_a_generator_result_is_an_error_naming_its_task(shared):
    def numbers(n):
        yield from range(n)

    job = dask.delayed(sum)(dask.delayed(numbers)(5, dask_key_name="made-a-generator"))
    with pytest.raises(TypeError, match="generator") as failed:
        shared.compute(job)
    assert "made-a-generator" in "\n".join(failed.value.__notes__)
    shared.settle()


def test_share_nothing_needs_processes():
    with pytest.raises(ConfigError, match="share_nothing"):
        wukong.Client(
            compute="local", storage="ideal", compute_options={"mode": "threads", "share_nothing": True}
        )


def test_share_nothing_workers_each_have_their_own_temp_dir(request, _clients):
    client = session_client(request, _clients, "share-nothing-embedded")
    where = dask.delayed(lambda _: (os.environ["TMPDIR"], os.environ["HOME"], os.getpid()))
    places = set(next(client).compute(*[where(i) for i in range(32)]))
    next(client, None)  # its leak check
    by_worker = {pid: (tmp, home) for tmp, home, pid in places}
    assert len(set(by_worker.values())) == len(by_worker)  # one pair per process
    for tmp, home in by_worker.values():
        assert Path(tmp).parent == Path(home) and Path(home).is_dir()
