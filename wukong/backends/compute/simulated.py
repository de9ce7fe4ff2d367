"""A simulated AWS Lambda: thousands of executors on one machine, with the platform's delays.

Executors run as threads of the client's process (so any store works, the ideal one included), and
the platform's behaviour is a model with documented parameters (see ``docs/backends/simulated-lambda.md``
for their sources):

- **Invocation latency.** An Invoke call blocks its caller for ``call_ms``; the function starts
  ``invoke_ms - call_ms`` later. Both are drawn from log-normal distributions with those means and a
  coefficient of variation of ``latency_spread`` (0: constant). A caller makes up to ``invokers``
  calls at once, as the real backend's invoker pool does, and waits for its calls to return.
- **Cold starts.** Each simulated container's first run starts ``cold_start_ms`` later; a container
  is reused (warm) by the next invocation once its executor ends.
- **Concurrency.** At most ``concurrency`` executors run at once; further events wait in a queue
  until one ends (Lambda queues throttled asynchronous events and retries them).
- **Bandwidth.** Each executor moves bytes to and from storage at ``bandwidth_mb_per_second`` at
  most: its context hands it its stores through
  :class:`~wukong.backends.compute.bandwidth.LimitedBandwidth`, which sleeps for the difference.
- **Time limit.** ``remaining_seconds`` counts down from ``time_limit_seconds``; an executor that
  runs past it fails the job at the next health check, as Lambda would have killed it.
- **At-least-once delivery.** A share ``duplicate_rate`` of invocations is delivered twice.

Tasks that sleep (the paper's delay tasks) release the GIL, so a thousand executors sleeping at once
behave as a thousand Lambdas would; CPU-bound tasks share this machine's cores, as they would not.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pydantic import Field

from wukong.backends.compute.bandwidth import LimitedBandwidth
from wukong.backends.compute.base import (
    BasicContext,
    ComputeBackend,
    ComputeCapabilities,
    Delivery,
    InvocationHandler,
)
from wukong.backends.options import BackendOptions
from wukong.backends.storage.base import ObjectStorageBackend
from wukong.errors import ComputeError

logger = logging.getLogger("wukong.compute.simulated")


class SimulatedLambdaOptions(BackendOptions):
    """The platform model of the ``simulated-lambda`` compute backend.

    Attributes:
        invoke_ms: mean time from an Invoke call to the function running (PDSW'19: 50 ms).
        call_ms: mean part of it during which the caller is blocked by the call.
        latency_spread: coefficient of variation of both (log-normal); 0 makes them constant.
        invokers: Invoke calls one caller makes at once.
        cold_start_ms: extra delay of a container's first run.
        concurrency: executors running at once at most (AWS's default account limit: 1,000).
        bandwidth_mb_per_second: each executor's storage throughput in MB/s, or ``None`` for no
            limit beyond the store's own.
        time_limit_seconds: an executor's longest run (AWS's maximum timeout: 900 s).
        duplicate_rate: the share of invocations delivered twice.
        seed: seed of the model's random draws, for repeatable runs (``None``: unseeded).

    """

    invoke_ms: float = Field(default=50.0, ge=0)
    call_ms: float = Field(default=10.0, ge=0)
    latency_spread: float = Field(default=0.3, ge=0)
    invokers: int = Field(default=16, ge=1)
    cold_start_ms: float = Field(default=250.0, ge=0)
    concurrency: int = Field(default=1000, ge=1)
    bandwidth_mb_per_second: float | None = Field(default=None, gt=0)
    time_limit_seconds: float = Field(default=900.0, gt=0)
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int | None = 0


@dataclass
class SimulationStats:
    """What the simulated platform did since it started.

    Attributes:
        invocations: Invoke calls made (by the client and by executors).
        deliveries: executor runs started (duplicates included).
        duplicates: extra deliveries of an invocation.
        cold_starts: runs that started a new container.
        throttled: events that waited for a free slot under the concurrency limit.
        peak_concurrency: the most executors running at once.
        timed_out: runs that went past the time limit.

    """

    invocations: int = 0
    deliveries: int = 0
    duplicates: int = 0
    cold_starts: int = 0
    throttled: int = 0
    peak_concurrency: int = 0
    timed_out: int = 0


class _Context(BasicContext):
    """The executor context of one simulated run."""

    def __init__(self, platform: SimulatedLambda, started: float, event: int):
        self._platform = platform
        self._deadline = started + platform.options.time_limit_seconds
        self._event = event

    def invoke(self, payloads: Sequence[bytes]) -> None:
        self._platform.invoke(payloads)

    def remaining_seconds(self) -> float | None:
        return self._deadline - time.monotonic()

    def delivery(self) -> Delivery:
        return Delivery(event_id=str(self._event))  # a duplicate is another event

    def storage(self, store: ObjectStorageBackend) -> ObjectStorageBackend:
        """The store at the model's bandwidth, if it has one."""
        megabytes = self._platform.options.bandwidth_mb_per_second
        return store if megabytes is None else LimitedBandwidth(store, megabytes * 1e6)


class SimulatedLambda(ComputeBackend):
    """Executors as threads, delayed and limited by a model of AWS Lambda."""

    name = "simulated-lambda"
    Options = SimulatedLambdaOptions

    def __init__(self, **options: object):
        super().__init__(**options)
        model = self.options
        self.capabilities = ComputeCapabilities(
            runs_in_client_process=True,
            repeats_deliveries=model.duplicate_rate > 0,
            # Lambda's containers share no files; its model runs Dask's shuffles as Lambda would.
            shares_filesystem=False,
        )
        self.stats = SimulationStats()
        self._random = random.Random(model.seed)
        self._events: list[tuple[float, int, bytes]] = []  # (due, order, payload), a heap
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._running: dict[int, float] = {}  # run id -> start
        self._run_ids = itertools.count()
        self._warm = 0  # idle containers
        self._last_full = -math.inf  # when a slot last freed up while every slot was taken
        self._handler: InvocationHandler | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._dispatcher: threading.Thread | None = None
        self._closed = False

    def describe(self) -> str:
        """Name the model's main figures."""
        model = self.options
        return (
            f"simulated Lambda (invoke {model.invoke_ms:g} ms, cold start {model.cold_start_ms:g} ms, "
            f"concurrency {model.concurrency})"
        )

    def start(self, handler: InvocationHandler) -> None:
        """Start the dispatcher; executor threads start as invocations need them."""
        self._handler = handler
        self._pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="wukong-simulated")
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="wukong-simulated-dispatch", daemon=True
        )
        self._dispatcher.start()

    def _draw(self, mean_ms: float) -> float:
        """One delay in seconds, log-normal with mean ``mean_ms`` and the model's spread."""
        spread = self.options.latency_spread
        if mean_ms <= 0:
            return 0.0
        if spread == 0:
            return mean_ms / 1000
        sigma = math.sqrt(math.log1p(spread * spread))
        with self._changed:
            draw = self._random.lognormvariate(math.log(mean_ms) - sigma * sigma / 2, sigma)
        return draw / 1000

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Make one Invoke call per payload, ``invokers`` at a time, and wait for the calls."""
        if not payloads:
            return
        model = self.options
        now = time.monotonic()
        lanes = [now] * min(model.invokers, len(payloads))  # when each invoker is free, a heap
        events = []
        for payload in payloads:
            accepted = heapq.heappop(lanes) + self._draw(model.call_ms)
            heapq.heappush(lanes, accepted)
            events.append((accepted + self._draw(max(model.invoke_ms - model.call_ms, 0.0)), payload))
            if model.duplicate_rate and self._random.random() < model.duplicate_rate:
                events.append((accepted + self._draw(max(model.invoke_ms - model.call_ms, 0.0)), payload))
        with self._changed:
            if self._closed:
                raise ComputeError(f"{self.describe()} is closed")
            self.stats.invocations += len(payloads)
            self.stats.duplicates += len(events) - len(payloads)
            for due, payload in events:
                heapq.heappush(self._events, (due, next(self._order), payload))
            self._changed.notify()
        # The caller waits for its calls to return, as a real invoker pool does.
        time.sleep(max(max(lanes) - time.monotonic(), 0.0))

    def _dispatch(self) -> None:
        """Start each event when it is due and a slot is free."""
        while True:
            with self._changed:
                while True:
                    if self._closed:
                        return
                    if self._events:
                        due = self._events[0][0]
                        wait = due - time.monotonic()
                        if wait <= 0 and len(self._running) < self.options.concurrency:
                            break
                        self._changed.wait(wait if wait > 0 else None)
                    else:
                        self._changed.wait()
                due, _, payload = heapq.heappop(self._events)
                if due < self._last_full:  # it was due while every slot was taken
                    self.stats.throttled += 1
                cold = self._warm == 0
                if cold:
                    self.stats.cold_starts += 1
                else:
                    self._warm -= 1
                run = next(self._run_ids)
                self._running[run] = time.monotonic()
                self.stats.deliveries += 1
                self.stats.peak_concurrency = max(self.stats.peak_concurrency, len(self._running))
            assert self._pool is not None
            self._pool.submit(self._run, run, payload, cold)

    def _run(self, run: int, payload: bytes, cold: bool) -> None:
        try:
            if cold:
                time.sleep(self.options.cold_start_ms / 1000)
            assert self._handler is not None
            self._handler(payload, _Context(self, time.monotonic(), run))
        except Exception:
            logger.exception("executor failed outside any task")
        finally:
            with self._changed:
                if len(self._running) == self.options.concurrency:
                    self._last_full = time.monotonic()
                started = self._running.pop(run)
                if time.monotonic() - started > self.options.time_limit_seconds:
                    self.stats.timed_out += 1
                self._warm += 1
                self._changed.notify()

    def check(self) -> None:
        """Fail if an executor ran past the time limit (Lambda would have stopped it)."""
        limit = self.options.time_limit_seconds
        with self._changed:
            now = time.monotonic()
            late = self.stats.timed_out + sum(now - started > limit for started in self._running.values())
        if late:
            raise ComputeError(
                f"{late} executor(s) ran past the simulated time limit of {limit:g} s; "
                "on AWS Lambda they would have been stopped"
            )

    def close(self) -> None:
        """Drop events not yet started; wait for running executors to end."""
        with self._changed:
            self._closed = True
            self._events.clear()
            self._changed.notify_all()
        if self._dispatcher is not None:
            self._dispatcher.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
