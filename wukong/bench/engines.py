"""The engines a benchmark run compares, each started before timing and stopped after.

An engine is a scheduler function (Dask's ``get`` protocol) plus a ``settle`` step run after every
timed computation: dask.distributed keeps the results of deterministic keys, so between its runs the
benchmark waits until the scheduler holds no task, or the next run would be served from memory.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import dask
import dask.multiprocessing
import dask.threaded

import wukong

ENGINES = (
    "wukong embedded",
    "wukong redis",
    "wukong ideal (threads)",
    "dask sync",
    "dask threads",
    "dask processes",
    "dask.distributed",
)
"""The engines a benchmark runs unless told otherwise."""

ENGINES_BY_NAME = ("wukong simulated-lambda",)
"""Engines run only when named: the simulated Lambda's modelled latencies are not this machine's."""


@dataclass
class Engine:
    """A started engine: ``get`` computes, ``persist`` persists one collection, ``settle`` runs after each.

    Dask's local engines persist into the client's memory (``persist=None``: ``dask.persist`` with
    ``get``); wukong persists into its store, dask.distributed into its workers' memory.
    """

    name: str
    get: Callable[..., Any]
    settle: Callable[[], None] = lambda: None
    persist: Callable[[Any], Any] | None = None

    def persisted(self, collection: Any) -> Any:
        """``collection`` persisted the engine's way."""
        if self.persist is not None:
            return self.persist(collection)
        return dask.persist(collection, scheduler=self.get)[0]

    @property
    def is_wukong(self) -> bool:
        """Whether this is one of wukong's configurations."""
        return self.name.startswith("wukong")


@contextmanager
def started(name: str, workers: int, redis_url: str | None = None) -> Iterator[Engine]:
    """Start engine ``name`` with ``workers`` workers; stop it on exit."""
    with ExitStack() as stack:
        if name == "wukong embedded":
            client = stack.enter_context(wukong.Client(compute_options={"workers": workers}))
            yield Engine(name, client.get, persist=client.persist)
        elif name == "wukong redis":
            if redis_url is None:
                from wukong.testing.servers import redis_server

                redis_url = stack.enter_context(redis_server()).url
            client = stack.enter_context(
                wukong.Client(storage=redis_url, compute_options={"workers": workers})
            )
            yield Engine(name, client.get, persist=client.persist)
        elif name == "wukong ideal (threads)":
            client = stack.enter_context(
                wukong.Client(storage="ideal", compute_options={"mode": "threads", "workers": workers})
            )
            yield Engine(name, client.get, persist=client.persist)
        elif name == "wukong simulated-lambda":
            # The platform model's defaults (1,000 concurrent executors, 50 ms invocations, cold
            # starts) on the embedded store; ``workers`` does not apply.
            client = stack.enter_context(wukong.Client(compute="simulated-lambda"))
            yield Engine(name, client.get, persist=client.persist)
        elif name == "dask sync":
            yield Engine(name, dask.get)
        elif name == "dask threads":
            yield Engine(name, partial(dask.threaded.get, num_workers=workers))
        elif name == "dask processes":
            context = multiprocessing.get_context("spawn")
            pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(workers, mp_context=context))
            yield Engine(name, partial(dask.multiprocessing.get, pool=pool))
        elif name == "dask.distributed":
            yield stack.enter_context(_distributed(workers))
        else:
            raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES + ENGINES_BY_NAME)}")


@contextmanager
def _distributed(workers: int) -> Iterator[Engine]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):

        def settle() -> None:
            while client.run_on_scheduler(_tasks_held):
                time.sleep(0.01)

        yield Engine("dask.distributed", client.get, settle, persist=client.persist)


def _tasks_held(dask_scheduler: Any) -> int:
    return len(dask_scheduler.tasks)


def one_blas_thread() -> None:
    """One BLAS thread in this process and every process it starts (every engine alike)."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)
