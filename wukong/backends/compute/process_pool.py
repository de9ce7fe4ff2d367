"""The local pool's worker processes, and the dispatcher in the client that feeds and watches them.

Every invocation goes through the dispatcher, a thread of the client's process: the client's and
the executors' invocations alike (a worker sends its executor's invocations up its own pipe). The
dispatcher hands each payload to a worker that asked for one, remembers which payloads each worker
holds, and restarts a worker that dies, delivering again, marked as a retry, the payloads it had
started; those it had only received are delivered again as they were. A payload it has seen
before is dropped: a retried executor invokes again the successors its crashed attempt may have
invoked, and each must run once.

Why not one ``multiprocessing.Queue`` shared by every worker: a worker killed while it waits on the
queue dies holding the queue's lock, and every other worker then waits forever; and what a worker
puts on such a queue leaves through a feeder thread, so a worker killed just after its executor
ended could take its successors' invocations with it. A pipe per worker has no shared lock, and
``Connection.send`` returns only once the bytes are in the pipe, where they outlive the sender.

Each worker asks for its next batch of payloads as it starts the last one it holds, and names in
shared memory the payloads it has started, and those it has finished but not yet reported (it
reports them with its next request, to save messages, or at once when it has nothing queued).
When a worker dies, the dispatcher counts the finished ones done and delivers the others again,
as retries, which replay their crashed attempts (see :mod:`wukong.core.attempts`).

With speculation on, workers also say when they start a payload. A payload that has run longer than
a multiple of the pool's median run time gets a backup: the same payload, marked as such, on an
idle worker. When either attempt is done, the dispatcher kills the other's worker and delivers the
loser again as a retry, which only lets go of its part (see :mod:`wukong.core.attempts`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import multiprocessing.util
import os
import selectors
import shutil
import signal
import socket
import statistics
import tempfile
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from wukong.backends.compute.base import BasicContext, Delivery, InvocationHandler
from wukong.backends.compute.environment import environment
from wukong.backends.compute.parking import MAX_PARKED, ParkingLot, Resume
from wukong.errors import ComputeError
from wukong.monitoring import logs

logger = logging.getLogger("wukong.compute.local")

_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_SEEN_CAPACITY = 2_000_000  # payload digests kept to drop repeated invocations, in one busy spell
_CREDIT, _INVOKE, _DONE, _STARTED = 0, 1, 2, 3  # what a worker tells the dispatcher
_SPECULATION_POLL_SECONDS = 0.05
_FAILED_STARTS_LIMIT = 3
_MAX_BATCH = 64
_FINISHED_CAPACITY = 64  # payloads a worker reports at once, at most


def _listed(array: Any) -> list[int]:
    """The numbers a shared array lists: its first cell says how many follow."""
    return [array[index] for index in range(1, array[0] + 1)]


class Speculation(NamedTuple):
    """When a payload gets a backup: after ``factor`` times the median run, and ``min_seconds``."""

    factor: float
    min_seconds: float


class PipeContext(BasicContext):
    """The executor context of a worker process: invoking is sending up the worker's pipe.

    Payloads arrive in batches (one when the pool is quiet, up to 64 when many wait), kept in a
    local queue; the worker asks for the next batch as it starts the last one it holds. An executor
    that waits (delayed I/O) parks with the worker, which runs other payloads meanwhile and resumes
    it when due, so a pool of two processes is not blocked by two waiting executors. A parked
    payload counts as started until its executor ends.
    """

    def __init__(
        self, connection: Any, started: Any, finished: Any, handler: InvocationHandler, report_starts: bool
    ):
        self._connection = connection
        self._started = started  # [count, numbers of the payloads begun and not finished (parked too)]
        self._finished = finished  # [count, numbers of payloads finished and not yet reported]
        self._handler = handler
        self._report_starts = report_starts
        self._local: deque[tuple[int, bytes, bool, bool]] = deque()
        self._parked: ParkingLot[int] = ParkingLot()
        self._asked = False
        self._stopping = False
        self._current = 0
        self._retry = False
        self._backup = False

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Send the payloads to the dispatcher, which hands each to a worker."""
        if payloads:
            self._connection.send((_INVOKE, list(payloads)))

    def remaining_seconds(self) -> float | None:
        """No time limit on a local worker."""
        return None

    def delivery(self) -> Delivery:
        """Whether the payload now starting is a retry (its worker died) or a speculative backup."""
        return Delivery(retry=self._retry, backup=self._backup)

    def park(self, resume: Resume) -> bool:
        """Hold the running payload's executor, and resume it between other payloads."""
        return self._parked.park(self._current, resume)

    def serve(self) -> None:
        """Run payloads, and resume parked executors, until the dispatcher says stop."""
        parked = self._parked
        while True:
            if self._local:
                self._run(*self._local.popleft())
                self._finish(parked.resume_due())
                continue
            if self._stopping:
                self._finish(parked.drain())
                return
            self._ask()
            wait = parked.seconds_to_next()
            if wait is not None and not self._connection.poll(wait):
                self._finish(parked.resume_due())
                continue
            self._receive()

    def _ask(self) -> None:
        if not self._asked:
            self._connection.send((_CREDIT, self._unreported()))
            self._finished[0] = 0  # reported
            self._asked = True

    def _unreported(self) -> list[int]:
        return _listed(self._finished)

    def _receive(self) -> None:
        """Take the next batch, or learn that the dispatcher says stop."""
        batch = self._connection.recv()
        self._asked = False
        if batch is None:
            self._stopping = True  # the worker stops once its parked executors end
        else:
            self._local.extend(batch)

    def _run(self, number: int, payload: bytes, retry: bool, backup: bool) -> None:
        started = self._started
        count = started[0] + 1
        started[count] = number
        started[0] = count  # named before it starts: a death from here on retries it
        self._current, self._retry, self._backup = number, retry, backup
        if self._report_starts:
            self._connection.send((_STARTED, number))
        if not self._local:
            self._ask()  # the next batch travels while this payload runs
        try:
            self._handler(payload, self)
        except Exception:
            # The handler reports task and storage errors to the job itself; an error that escapes
            # it is a bug in wukong, logged so the worker stays up for the next invocation.
            logger.exception("executor failed outside any task")
        if number not in self._parked:
            self._finish([number])

    def _finish(self, numbers: list[int]) -> None:
        """Name ``numbers`` as finished, then no longer as started; report them when it is time."""
        started, finished = self._started, self._finished
        for number in numbers:
            count = finished[0] + 1
            finished[count] = number
            finished[0] = count  # named as finished before it stops being named as started
            held = _listed(started)
            at = held.index(number) + 1
            started[at] = started[started[0]]  # a death between these two writes: still finished
            started[0] -= 1
            # Reports wait for the next request while the worker has payloads queued; a worker
            # that runs out reports at once, since the dispatcher hands new payloads to the worker
            # holding the fewest, and a stale count would send them to a busy one. Speculation
            # times every run.
            if self._report_starts or count == _FINISHED_CAPACITY or not self._local:
                self._connection.send((_DONE, self._unreported()))
                finished[0] = 0


def _move_in(private_root: str) -> None:
    """Give this process a temp dir and home of its own, as a Lambda container has."""
    home = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=private_root)
    temporary = os.path.join(home, "tmp")
    os.mkdir(temporary)
    for variable in ("TMPDIR", "TEMP", "TMP"):
        os.environ[variable] = temporary
    os.environ["HOME"] = home
    tempfile.tempdir = temporary  # a forked worker inherits the client's choice, made before


def worker_main(
    connection: Any,
    shared: tuple[Any, Any],
    handler: InvocationHandler,
    blas_threads: int | None,
    report_starts: bool,
    private_root: str | None = None,
) -> None:
    """The body of a worker process."""
    logs.configure_worker()
    if blas_threads is not None:
        for variable in _BLAS_THREAD_VARIABLES:
            os.environ[variable] = str(blas_threads)
    if private_root is not None:
        _move_in(private_root)
    with contextlib.suppress(EOFError, OSError):  # the client went away: nothing left to run for
        PipeContext(connection, *shared, handler, report_starts).serve()


def _abandon(abandoned: threading.Event, private_root: str) -> None:
    """At the exit of a client that never closed its pool: respawn no worker, remove their dirs."""
    abandoned.set()
    shutil.rmtree(private_root, ignore_errors=True)


def _close_connection(connection: Any) -> None:
    """Close a connection (in a forked worker: its copy of the dispatcher's end of a pipe)."""
    connection.close()


class _Held(NamedTuple):
    """A payload handed to a worker: which attempt, and whether it is a speculative backup."""

    payload: bytes
    attempt: int
    backup: bool = False


@dataclass(eq=False)
class _Worker:
    """The dispatcher's view of one worker process."""

    process: Any
    connection: Any
    started: Any  # shared with the process: see PipeContext
    finished: Any
    held: dict[int, _Held] = field(default_factory=dict)  # by number
    credits: int = 0
    stopped_for_race: bool = False  # killed by the dispatcher: its payloads lost nothing
    ready: bool = False  # it has asked for work: it got through its start

    def running_numbers(self) -> set[int]:
        """The payloads it began and has not finished."""
        return set(_listed(self.started)) - self.finished_numbers()

    def finished_numbers(self) -> set[int]:
        """The payloads it finished and has not reported yet."""
        return set(_listed(self.finished))


class ProcessPool:
    """Worker processes fed one payload at a time by a dispatcher thread, which retries crashes."""

    def __init__(
        self,
        handler: InvocationHandler,
        *,
        workers: int,
        start_method: str,
        blas_threads: int | None,
        max_attempts: int,
        description: str,
        speculation: Speculation | None = None,
        environment: dict[str, str] | None = None,
        share_nothing: bool = False,
    ):
        self._handler, self._size, self._blas_threads = handler, workers, blas_threads
        self._environment = environment or {}
        self._share_nothing = share_nothing
        self._private_root: str | None = None
        self._abandoned = threading.Event()  # the client's process exits without closing the pool
        self._speculation = speculation
        self._started_at: dict[int, float] = {}
        self._run_seconds: deque[float] = deque(maxlen=200)
        self._twins: dict[int, int] = {}  # a started payload and its backup, both ways
        self._backed_up: set[int] = set()
        self._context = multiprocessing.get_context(start_method)
        self._max_attempts, self._description = max_attempts, description
        self._workers: list[_Worker] = []
        self._inbox: deque[bytes] = deque()  # from the client, any thread
        self._pending: deque[_Held] = deque()  # dispatcher only
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._numbers = iter(range(1, 1 << 62))
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._failure: ComputeError | None = None
        self._closing = False
        self.retries = 0
        self.restarts = 0
        self.backups = 0
        self._failed_starts = 0  # workers in a row that died before asking for work
        self._thread = threading.Thread(target=self._dispatch_forever, name="wukong-dispatcher", daemon=True)

    def start(self) -> None:
        """Start the workers and the dispatcher."""
        if self._share_nothing:
            self._private_root = tempfile.mkdtemp(prefix="wukong-pool-")
            # Removed at close, or at exit for a pool nobody closed.
            weakref.finalize(self, _abandon, self._abandoned, self._private_root)
        self._workers = [self._spawn(number) for number in range(self._size)]
        self._thread.start()

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [worker.process.pid for worker in self._workers]

    def submit(self, payloads: Sequence[bytes]) -> None:
        """Queue payloads for the dispatcher (from any thread)."""
        self._inbox.extend(payloads)
        self._wake()

    def check(self) -> None:
        """Raise the failure that made the pool give up on an invocation, if any."""
        if self._failure is not None:
            raise self._failure
        if not self._thread.is_alive() and not self._closing:
            raise ComputeError(f"{self._description}: the dispatcher thread stopped")

    def close(self) -> None:
        """Stop the dispatcher, then the workers, waiting briefly for running executors to end."""
        self._closing = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.connection.send(None)
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)
            worker.connection.close()
        self._workers = []
        if self._private_root is not None:
            shutil.rmtree(self._private_root, ignore_errors=True)
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # closed: nothing to wake
            self._wake_writer.send(b"\0")

    def _spawn(self, number: int) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        # A worker stops at end of file on its pipe, as when the client's process dies, but only once
        # every copy of the client's end is closed: a worker forked later (start_method="fork")
        # closes the copy it inherits. Spawned workers inherit no such copy.
        multiprocessing.util.register_after_fork(ours, _close_connection)
        started = self._context.RawArray("q", MAX_PARKED + 2)  # the running payload, the parked
        finished = self._context.RawArray("q", _FINISHED_CAPACITY + 1)
        report_starts = self._speculation is not None
        process = self._context.Process(
            target=worker_main,
            args=(
                theirs,
                (started, finished),
                self._handler,
                self._blas_threads,
                report_starts,
                self._private_root,
            ),
            name=f"wukong-executor-{number}",
            daemon=True,
        )
        with environment(self._environment):
            process.start()
        theirs.close()
        worker = _Worker(process, ours, started, finished)
        self._selector.register(ours, selectors.EVENT_READ, worker)
        self._selector.register(process.sentinel, selectors.EVENT_READ, worker)
        return worker

    def _dispatch_forever(self) -> None:
        try:
            while not self._closing:
                self._step()
        except Exception as error:  # a bug here must fail jobs, not hang them
            logger.exception("the local pool's dispatcher stopped")
            self._failure = ComputeError(f"{self._description}: the dispatcher failed: {error!r}")

    def _step(self) -> None:
        timeout = None if self._speculation is None else _SPECULATION_POLL_SECONDS
        dead: list[_Worker] = []
        for key, _ in self._selector.select(timeout):
            worker = key.data
            if worker is None:
                self._wake_reader.recv(4096)
            elif (key.fileobj == worker.process.sentinel or not self._read(worker)) and worker not in dead:
                dead.append(worker)
        for worker in dead:
            self._replace(worker)
        self._accept(self._take_inbox())
        self._hand_out()
        if not self._pending and not any(worker.held for worker in self._workers):
            # Idle: every payload seen has ended, so no retry can repeat one any more.
            self._seen.clear()
        if self._speculation is not None:
            self._speculate(self._speculation)

    def _take_inbox(self) -> list[bytes]:
        payloads = []
        while self._inbox:
            payloads.append(self._inbox.popleft())
        return payloads

    def _read(self, worker: _Worker) -> bool:
        """Handle every message the worker has sent; ``False`` once its pipe is closed."""
        connection = worker.connection
        try:
            while connection.poll():
                kind, body = connection.recv()
                if kind == _INVOKE:
                    self._accept(body)
                elif kind == _STARTED:
                    self._started_at[body] = time.monotonic()
                else:  # done, or done and asking for more
                    for number in body:
                        self._done(worker, number)
                    if kind == _CREDIT:
                        worker.credits += 1
                        worker.ready = True
        except (EOFError, OSError):
            return False
        return True

    def _done(self, worker: _Worker, number: int) -> None:
        held = worker.held.pop(number, None)
        started = self._started_at.pop(number, None)
        self._backed_up.discard(number)  # ended: it never needs a backup again
        if held is not None and started is not None and not held.backup:
            self._run_seconds.append(time.monotonic() - started)
        twin = self._twins.pop(number, None)
        if twin is None:
            return
        del self._twins[twin]
        for other in self._workers:
            if twin in other.held and not other.stopped_for_race:
                # The race is won: stop the loser now (its retry only lets go of its part).
                other.stopped_for_race = True
                with contextlib.suppress(ProcessLookupError):  # it died on its own meanwhile
                    os.kill(other.process.pid, signal.SIGKILL)

    def _speculate(self, speculation: Speculation) -> None:
        """Give a backup to one payload that has run too long, if a worker is idle."""
        idle = [worker for worker in self._workers if worker.credits > 0 and not worker.held]
        if not idle or not self._started_at:
            return
        median = statistics.median(self._run_seconds) if self._run_seconds else 0.0
        limit = max(speculation.min_seconds, speculation.factor * median)
        now = time.monotonic()
        for worker in self._workers:
            for number, held in worker.held.items():
                began = self._started_at.get(number)
                if held.backup or number in self._backed_up or began is None or now - began < limit:
                    continue
                self._backed_up.add(number)
                backup = next(self._numbers)
                target = idle[0]
                try:
                    target.connection.send([(backup, held.payload, False, True)])
                except OSError:
                    return  # it died: its sentinel will tell
                target.credits -= 1
                target.held[backup] = _Held(held.payload, 0, backup=True)
                self._twins[number], self._twins[backup] = backup, number
                self.backups += 1
                logger.info("a payload ran %.1f s (limit %.1f s): a backup started", now - began, limit)
                return

    def _accept(self, payloads: Sequence[bytes]) -> None:
        """Queue new payloads; drop those seen before (a retried executor's repeated invocations)."""
        seen = self._seen
        for payload in payloads:
            digest = hashlib.blake2b(payload, digest_size=16).digest()
            if digest in seen:
                continue
            seen[digest] = None
            if len(seen) > _SEEN_CAPACITY:
                seen.popitem(last=False)
            self._pending.append(_Held(payload, 0))

    def _hand_out(self) -> None:
        """Send batches to the workers that asked: one payload when few wait, more when many do."""
        pending = self._pending
        while pending:
            ready = [worker for worker in self._workers if worker.credits > 0]
            if not ready:
                return
            worker = min(ready, key=lambda candidate: len(candidate.held))
            size = max(1, min(_MAX_BATCH, len(pending) // (2 * len(self._workers))))
            batch = [(next(self._numbers), pending.popleft()) for _ in range(min(size, len(pending)))]
            try:
                worker.connection.send(
                    [(number, held.payload, held.attempt > 0, held.backup) for number, held in batch]
                )
            except OSError:
                pending.extendleft(held for _, held in reversed(batch))  # it died: its sentinel will tell
                worker.credits = 0
                return
            worker.credits -= 1
            worker.held.update(batch)

    def _replace(self, dead: _Worker) -> None:
        """A worker died: read what it sent before, retry what it held, start another in its place."""
        self._read(dead)
        dead.process.join(timeout=1)
        # A finished payload is done: its executor counted itself out and its invocations are in
        # the pipe, read above. Delivering it again would only charge it an attempt it never used.
        for number in dead.finished_numbers():
            self._done(dead, number)
        started = dead.running_numbers()
        code = dead.process.exitcode
        for number, held in dead.held.items():
            self._started_at.pop(number, None)
            twin = self._twins.pop(number, None)
            if twin is not None:
                self._twins.pop(twin, None)  # its retry races on, unwatched
            if number not in started:
                self._pending.appendleft(held)  # never began: deliver it as it was
            elif dead.stopped_for_race:
                self._pending.appendleft(held._replace(attempt=max(held.attempt, 1)))
            elif held.attempt + 1 >= self._max_attempts:
                self._failure = ComputeError(
                    f"{self._description}: an invocation killed its worker {held.attempt + 1} times "
                    f"(last: pid {dead.process.pid}, exit code {code}); it is not retried again"
                )
            else:
                self.retries += 1
                logger.warning(
                    "worker pid %s died (exit code %s) running an invocation; retrying it",
                    dead.process.pid,
                    code,
                )
                self._pending.appendleft(held._replace(attempt=held.attempt + 1))
        # Before the close: a new pipe may reuse the file descriptor, which the selector keys on.
        self._selector.unregister(dead.connection)
        self._selector.unregister(dead.process.sentinel)
        dead.connection.close()
        if dead.ready:
            self._failed_starts = 0
        elif code != -signal.SIGKILL:  # a worker killed from outside says nothing of the start
            self._failed_starts += 1
        if self._failed_starts >= _FAILED_STARTS_LIMIT:
            self._failure = ComputeError(
                f"{self._description}: worker processes die as they start (the last with exit "
                f"code {code}); see the log above for why"
            )
        if self._abandoned.is_set():
            return  # the client's process is exiting: its workers die with it
        index = self._workers.index(dead)
        self._workers[index] = self._spawn(index)
        self.restarts += 1
