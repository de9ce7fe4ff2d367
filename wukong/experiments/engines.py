"""The engines experiments compare, each a context manager yielding a ``get(graph, keys)``."""

from __future__ import annotations

import operator
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import wukong

Get = Callable[[Any, Any], Any]

DASK_THREADS = 40
"""Dask distributed's threads: the PDSW'19 cluster's cores (5 t2.2xlarge VMs, 8 vCPUs each)."""


@contextmanager
def wukong_engine(**settings: Any) -> Iterator[Get]:
    """A wukong client with ``settings`` (compute, storage, scheduling, options)."""
    with wukong.Client(timeout=600, **settings) as client:
        yield client.get


@contextmanager
def dask_distributed(threads: int = DASK_THREADS) -> Iterator[Get]:
    """Dask distributed on this machine: one worker with ``threads`` threads, in this process."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=threads, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client.get


def timed(
    run: Callable[[], Any],
    expected: Any,
    repeat: int,
    same: Callable[[Any, Any], bool] = operator.eq,
) -> float:
    """Median seconds of ``repeat`` calls of ``run``, after checking its answer once (a warm-up)."""
    if not same(run(), expected):
        raise AssertionError("wrong answer: it differs from what Dask computes")
    samples = []
    for _ in range(repeat):
        begun = time.perf_counter()
        run()
        samples.append(time.perf_counter() - begun)
    return statistics.median(samples)
