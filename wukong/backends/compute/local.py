"""The local compute backend: a pool of worker processes (or threads) that stands in for AWS Lambda.

``invoke`` hands payloads over and returns at once, like an asynchronous Lambda invoke; a free
worker runs each with the executor. Executors invoke their successors the same way, so the client is
not involved once a job's leaves are invoked.

In processes mode (the default) a dispatcher thread in the client feeds the workers and retries the
invocations of a worker that dies (see :mod:`wukong.backends.compute.process_pool`). The threads
mode runs executors in threads of the client's process, fed by one queue, for the ideal store and for
debugging (``workers=1`` runs one executor at a time, under a debugger); a thread cannot die alone.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Sequence
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from wukong.backends.compute.base import (
    BasicContext,
    ComputeBackend,
    ComputeCapabilities,
    InvocationHandler,
)
from wukong.backends.compute.environment import executor_environment, hash_seed
from wukong.backends.compute.parking import ParkingLot, Resume
from wukong.backends.compute.process_pool import ProcessPool, Speculation
from wukong.backends.options import BackendOptions
from wukong.errors import ComputeError

logger = logging.getLogger("wukong.compute.local")

_STOP = None


class LocalOptions(BackendOptions):
    """Options of the ``local`` compute backend.

    Attributes:
        workers: how many executors run at once (default: one per core).
        mode: ``processes`` (default) or ``threads`` (executors in the client's process).
        start_method: how worker processes start; ``spawn`` is safe with any threads in the client.
        blas_threads: BLAS threads per worker process (1 by default, so workers do not oversubscribe
            the cores); ``None`` leaves the environment alone.
        max_attempts: how often an invocation is started before the job fails, when its worker
            process dies each time (3: the first run and two retries, as AWS Lambda does).
        speculate_after: start a backup of an invocation that has run this many times the pool's
            median invocation time (processes only; ``None``, the default, never does). The first
            of the two to end wins; the other is stopped. Needs a metadata store with
            conditional increments (redis, embedded).
        speculate_min_seconds: never back up an invocation younger than this.
        share_nothing: give every worker process a temp dir and home of its own, made when it
            starts and removed with the pool, as each Lambda container has (processes only). The
            pool then says its executors share no filesystem, so Dask's shuffles run as tasks,
            as they must on Lambda. The dirs are apart by name only: a path handed from one
            executor to another still opens on this machine.

    """

    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    mode: Literal["processes", "threads"] = "processes"
    start_method: Literal["spawn", "forkserver", "fork"] = "spawn"
    blas_threads: int | None = Field(default=1, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    speculate_after: float | None = Field(default=None, gt=1)
    speculate_min_seconds: float = Field(default=1.0, ge=0)
    share_nothing: bool = False

    @model_validator(mode="after")
    def _processes_for_share_nothing(self) -> Self:
        if self.share_nothing and self.mode == "threads":
            raise ValueError("share_nothing needs mode='processes': threads share the client's files")
        return self


class _QueueContext(BasicContext):
    """The executor context of a worker thread: invoking is putting on the shared queue.

    An executor that waits (delayed I/O) parks with the thread, which runs the next queued
    invocations meanwhile, so two waiting executors do not block a pool of two.
    """

    def __init__(self, invocations: queue.SimpleQueue[Any]):
        self._invocations = invocations
        self.parked: ParkingLot[None] = ParkingLot()

    def invoke(self, payloads: Sequence[bytes]) -> None:
        put = self._invocations.put
        for payload in payloads:
            put(payload)

    def remaining_seconds(self) -> float | None:
        return None

    def park(self, resume: Resume) -> bool:
        """Hold the executor until the thread has a moment for it."""
        return self.parked.park(None, resume)


def _run(payload: bytes, handler: InvocationHandler, context: _QueueContext) -> None:
    try:
        handler(payload, context)
    except Exception:
        # The handler reports task and storage errors to the job itself; an error that escapes
        # it is a bug in wukong, logged so the worker stays up for the next invocation.
        logger.exception("executor failed outside any task")


def _serve(invocations: queue.SimpleQueue[Any], handler: InvocationHandler) -> None:
    """Run payloads from the queue, and resume parked executors, until the stop marker arrives."""
    context = _QueueContext(invocations)
    parked = context.parked
    while True:
        try:
            payload = invocations.get(timeout=parked.seconds_to_next())
        except queue.Empty:
            parked.resume_due()
            continue
        if payload is _STOP:
            parked.drain()
            return
        _run(payload, handler, context)
        parked.resume_due()


class LocalCompute(ComputeBackend):
    """A pool of local workers, processes or threads."""

    name = "local"
    Options = LocalOptions

    def __init__(self, **options: Any):
        super().__init__(**options)
        threads = self.options.mode == "threads"
        # Forked workers inherit the client's hash salt; spawned ones get the seed at start.
        own_seed = not threads and self.options.start_method != "fork"
        self.capabilities = ComputeCapabilities(
            runs_in_client_process=threads,
            retries_crashes=not threads,
            speculates=not threads and self.options.speculate_after is not None,
            shares_filesystem=not self.options.share_nothing,
            hash_seed=hash_seed() if own_seed else None,
        )
        self._threads: list[threading.Thread] = []
        self._invocations: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pool: ProcessPool | None = None

    def describe(self) -> str:
        """Say how many workers of which kind."""
        alone = " sharing nothing" if self.options.share_nothing else ""
        return f"local pool of {self.options.workers} {self.options.mode}{alone}"

    def start(self, handler: InvocationHandler) -> None:
        """Start the workers (once; later calls do nothing)."""
        if self._threads or self._pool is not None:
            return
        options = self.options
        if options.mode == "processes":
            self._pool = ProcessPool(
                handler,
                workers=options.workers,
                start_method=options.start_method,
                blas_threads=options.blas_threads,
                max_attempts=options.max_attempts,
                description=self.describe(),
                speculation=(
                    None
                    if options.speculate_after is None
                    else Speculation(options.speculate_after, options.speculate_min_seconds)
                ),
                environment=executor_environment() if self.capabilities.hash_seed else None,
                share_nothing=options.share_nothing,
            )
            self._pool.start()
            return
        for number in range(options.workers):
            worker = threading.Thread(
                target=_serve,
                args=(self._invocations, handler),
                name=f"wukong-executor-{number}",
                daemon=True,
            )
            worker.start()
            self._threads.append(worker)

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes' ids (none in threads mode): for monitoring and fault injection."""
        return self._pool.pids if self._pool is not None else []

    @property
    def retries(self) -> int:
        """How many invocations were delivered again because their worker process died."""
        return self._pool.retries if self._pool is not None else 0

    @property
    def backups(self) -> int:
        """How many speculative backups were started."""
        return self._pool.backups if self._pool is not None else 0

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Hand the payloads to the workers; a free worker takes each."""
        if self._pool is not None:
            self._pool.submit(payloads)
            return
        if not self._threads:
            raise ComputeError(f"{self.describe()} is not started (or already closed)")
        put = self._invocations.put
        for payload in payloads:
            put(payload)

    def check(self) -> None:
        """Fail if an invocation cannot run: it killed its worker process too often."""
        if self._pool is not None:
            self._pool.check()

    def close(self) -> None:
        """Stop every worker, waiting briefly for running executors to end."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        threads, self._threads = self._threads, []
        for _ in threads:
            self._invocations.put(_STOP)
        for thread in threads:
            thread.join(timeout=5)
