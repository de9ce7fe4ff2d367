"""The local compute backend: a pool of worker processes (or threads) fed by one invocation queue.

It stands in for AWS Lambda on one machine. ``invoke`` puts payloads on a shared queue and returns at
once, like an asynchronous Lambda invoke; each worker takes the next payload and runs the executor.
Executors invoke their successors through the same queue, so the client is not involved once a job's
leaves are invoked. The threads mode runs the same loop in threads of the client's process, for
the ideal store and for debugging (``workers=1`` runs one executor at a time, under a debugger).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from wukong.backends.compute.base import (
    ComputeBackend,
    ComputeCapabilities,
    InvocationHandler,
)
from wukong.backends.options import BackendOptions
from wukong.core import logs
from wukong.errors import ComputeError

logger = logging.getLogger("wukong.compute.local")

_STOP = None
_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class LocalOptions(BackendOptions):
    """Options of the ``local`` compute backend.

    Attributes:
        workers: how many executors run at once (default: one per core).
        mode: ``processes`` (default) or ``threads`` (executors in the client's process).
        start_method: how worker processes start; ``spawn`` is safe with any threads in the client.
        blas_threads: BLAS threads per worker process (1 by default, so workers do not oversubscribe
            the cores); ``None`` leaves the environment alone.

    """

    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    mode: Literal["processes", "threads"] = "processes"
    start_method: Literal["spawn", "forkserver", "fork"] = "spawn"
    blas_threads: int | None = Field(default=1, ge=1)


_MAX_NESTED = 32  # executors one worker holds in delayed I/O while it runs others (stack depth)


class _QueueContext:
    """The executor context of a local worker: invoking is putting on the shared queue.

    While an executor waits (delayed I/O), ``pause`` runs the next queued invocation in the same
    worker, so a pool of two processes is not blocked by two waiting executors: each waits while
    the work it waits for runs, as it would on Lambda, where every executor has its own container.
    """

    def __init__(self, invocations: Any, handler: InvocationHandler):
        self._invocations = invocations
        self._handler = handler
        self._nested = 0

    def invoke(self, payloads: Sequence[bytes]) -> None:
        put = self._invocations.put
        for payload in payloads:
            put(payload)

    def remaining_seconds(self) -> float | None:
        return None

    def pause(self, seconds: float) -> None:
        """Run one queued invocation if one comes within ``seconds``; else just wait."""
        if self._nested >= _MAX_NESTED:
            time.sleep(seconds)
            return
        try:
            payload = self._invocations.get(timeout=seconds)
        except queue.Empty:
            return
        if payload is _STOP:
            self._invocations.put(_STOP)  # for the worker's own loop, once this executor ends
            time.sleep(seconds)
            return
        self._nested += 1
        try:
            _run(payload, self._handler, self)
        finally:
            self._nested -= 1


def _run(payload: bytes, handler: InvocationHandler, context: _QueueContext) -> None:
    try:
        handler(payload, context)
    except Exception:
        # The handler reports task and storage errors to the job itself; an error that escapes
        # it is a bug in wukong, logged so the worker stays up for the next invocation.
        logger.exception("executor failed outside any task")


def _serve(invocations: Any, handler: InvocationHandler) -> None:
    """Run payloads from the queue until the stop marker arrives."""
    context = _QueueContext(invocations, handler)
    while (payload := invocations.get()) is not _STOP:
        _run(payload, handler, context)


def _process_main(invocations: Any, handler: InvocationHandler, blas_threads: int | None) -> None:
    logs.configure_worker()
    if blas_threads is not None:
        for variable in _BLAS_THREAD_VARIABLES:
            os.environ[variable] = str(blas_threads)
    _serve(invocations, handler)


class LocalCompute(ComputeBackend):
    """A pool of local workers, processes or threads."""

    name = "local"
    Options = LocalOptions

    def __init__(self, **options: Any):
        super().__init__(**options)
        threads = self.options.mode == "threads"
        self.capabilities = ComputeCapabilities(runs_in_client_process=threads, can_pause=True)
        self._workers: list[Any] = []
        self._invocations: Any = None

    def describe(self) -> str:
        """Say how many workers of which kind."""
        return f"local pool of {self.options.workers} {self.options.mode}"

    def start(self, handler: InvocationHandler) -> None:
        """Start the workers (once; later calls do nothing)."""
        if self._workers:
            return
        if self.options.mode == "threads":
            self._invocations = queue.SimpleQueue()
            for number in range(self.options.workers):
                worker = threading.Thread(
                    target=_serve,
                    args=(self._invocations, handler),
                    name=f"wukong-executor-{number}",
                    daemon=True,
                )
                worker.start()
                self._workers.append(worker)
            return
        context = multiprocessing.get_context(self.options.start_method)
        # An unbounded queue with a feeder thread: invoke never blocks, even when every worker is
        # itself invoking a wide fan-out.
        self._invocations = context.Queue()
        for number in range(self.options.workers):
            worker = context.Process(
                target=_process_main,
                args=(self._invocations, handler, self.options.blas_threads),
                name=f"wukong-executor-{number}",
                daemon=True,
            )
            worker.start()
            self._workers.append(worker)

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes' ids (none in threads mode): for monitoring and fault injection."""
        return [
            worker.pid for worker in self._workers if isinstance(worker, multiprocessing.process.BaseProcess)
        ]

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Queue the payloads; a free worker takes each."""
        if not self._workers:
            raise ComputeError(f"{self.describe()} is not started (or already closed)")
        put = self._invocations.put
        for payload in payloads:
            put(payload)

    def check(self) -> None:
        """Fail if a worker died (its invocation is lost)."""
        for worker in self._workers:
            if not worker.is_alive():
                code = getattr(worker, "exitcode", None)
                detail = f" with exit code {code}" if code is not None else ""
                raise ComputeError(
                    f"{self.describe()}: worker {worker.name} "
                    f"(pid {getattr(worker, 'pid', '-')}) died{detail}; its executor's work is lost"
                )

    def close(self) -> None:
        """Stop every worker, waiting briefly for running executors to end."""
        workers, self._workers = self._workers, []
        if not workers:
            return
        for _ in workers:
            self._invocations.put(_STOP)
        for worker in workers:
            worker.join(timeout=5)
        for worker in workers:
            if isinstance(worker, threading.Thread) or not worker.is_alive():
                continue
            worker.terminate()
            worker.join(timeout=5)
        if not isinstance(self._invocations, queue.SimpleQueue):
            self._invocations.close()
            self._invocations.join_thread()
