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

Each worker asks for its next payload as it starts one (one in hand, one on the way), and names in
shared memory the payloads it has started, so that the dispatcher knows which ones to retry. It
clears the name only after it has told the dispatcher the payload is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wukong.backends.compute.base import InvocationHandler
from wukong.core import logs
from wukong.errors import ComputeError

logger = logging.getLogger("wukong.compute.local")

MAX_NESTED = 32  # executors one worker holds in delayed I/O while it runs others (stack depth)
_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_SEEN_CAPACITY = 500_000  # payload digests remembered to drop repeated invocations
_CREDIT, _INVOKE, _DONE = 0, 1, 2  # what a worker tells the dispatcher


class PipeContext:
    """The executor context of a worker process: invoking is sending up the worker's pipe.

    While an executor waits (delayed I/O), ``pause`` runs the next payload the dispatcher sends, in
    the same worker, so a pool of two processes is not blocked by two waiting executors.
    """

    def __init__(self, connection: Any, started: Any, handler: InvocationHandler):
        self._connection = connection
        self._started = started  # [depth, id of the outer payload, ..., id of the innermost]
        self._handler = handler
        self._asked = False
        self._stopping = False
        self._retry = False

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Send the payloads to the dispatcher, which hands each to a worker."""
        if payloads:
            self._connection.send((_INVOKE, list(payloads)))

    def remaining_seconds(self) -> float | None:
        """No time limit on a local worker."""
        return None

    def is_retry(self) -> bool:
        """Whether the payload now starting was started before by a worker that died."""
        return self._retry

    def pause(self, seconds: float) -> None:
        """Run the next payload if one comes within ``seconds``; else just wait."""
        depth = self._started[0]
        if depth >= MAX_NESTED or self._stopping:
            time.sleep(seconds)
            return
        self._ask()
        if not self._connection.poll(seconds):
            return
        message = self._receive()
        if message is None:
            self._stopping = True  # for the worker's own loop, once the waiting executors end
            return
        self._run(*message)

    def serve(self) -> None:
        """Run payloads until the dispatcher says stop."""
        while not self._stopping:
            self._ask()
            message = self._receive()
            if message is None:
                return
            self._run(*message)

    def _ask(self) -> None:
        if not self._asked:
            self._connection.send((_CREDIT, None))
            self._asked = True

    def _receive(self) -> tuple[int, bytes, bool] | None:
        message = self._connection.recv()
        self._asked = False
        return message

    def _run(self, number: int, payload: bytes, retry: bool) -> None:
        started = self._started
        depth = started[0] + 1
        started[depth] = number
        started[0] = depth  # named before it starts: a death from here on retries it
        self._retry = retry
        self._ask()  # the next payload travels while this one runs
        try:
            self._handler(payload, self)
        except Exception:
            # The handler reports task and storage errors to the job itself; an error that escapes
            # it is a bug in wukong, logged so the worker stays up for the next invocation.
            logger.exception("executor failed outside any task")
        finally:
            self._connection.send((_DONE, number))
            started[0] = depth - 1  # after the dispatcher knows it is done: never retried then


def worker_main(connection: Any, started: Any, handler: InvocationHandler, blas_threads: int | None) -> None:
    """The body of a worker process."""
    logs.configure_worker()
    if blas_threads is not None:
        for variable in _BLAS_THREAD_VARIABLES:
            os.environ[variable] = str(blas_threads)
    with contextlib.suppress(EOFError, OSError):  # the client went away: nothing left to run for
        PipeContext(connection, started, handler).serve()


@dataclass(eq=False)
class _Worker:
    """The dispatcher's view of one worker process."""

    process: Any
    connection: Any
    started: Any  # shared with the process: see PipeContext
    held: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # number -> (payload, attempt)
    credits: int = 0

    def started_numbers(self) -> set[int]:
        return {self.started[index] for index in range(1, self.started[0] + 1)}


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
    ):
        self._handler, self._size, self._blas_threads = handler, workers, blas_threads
        self._context = multiprocessing.get_context(start_method)
        self._max_attempts, self._description = max_attempts, description
        self._workers: list[_Worker] = []
        self._inbox: deque[bytes] = deque()  # from the client, any thread
        self._pending: deque[tuple[bytes, int]] = deque()  # (payload, attempt), dispatcher only
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._numbers = iter(range(1, 1 << 62))
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._failure: ComputeError | None = None
        self._closing = False
        self.retries = 0
        self.restarts = 0
        self._thread = threading.Thread(target=self._dispatch_forever, name="wukong-dispatcher", daemon=True)

    def start(self) -> None:
        """Start the workers and the dispatcher."""
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
        self._wake_reader.close()
        self._wake_writer.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # closed: nothing to wake
            self._wake_writer.send(b"\0")

    def _spawn(self, number: int) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        started = self._context.RawArray("q", MAX_NESTED + 2)
        process = self._context.Process(
            target=worker_main,
            args=(theirs, started, self._handler, self._blas_threads),
            name=f"wukong-executor-{number}",
            daemon=True,
        )
        process.start()
        theirs.close()
        return _Worker(process, ours, started)

    def _dispatch_forever(self) -> None:
        try:
            while not self._closing:
                self._step()
        except Exception as error:  # a bug here must fail jobs, not hang them
            logger.exception("the local pool's dispatcher stopped")
            self._failure = ComputeError(f"{self._description}: the dispatcher failed: {error!r}")

    def _step(self) -> None:
        by_connection = {worker.connection: worker for worker in self._workers}
        by_sentinel = {worker.process.sentinel: worker for worker in self._workers}
        ready = multiprocessing.connection.wait([*by_connection, *by_sentinel, self._wake_reader])
        dead: list[_Worker] = []
        for ready_object in ready:
            if ready_object is self._wake_reader:
                self._wake_reader.recv(4096)
                continue
            worker = by_connection.get(ready_object) or by_sentinel[ready_object]
            if (ready_object is worker.process.sentinel or not self._read(worker)) and worker not in dead:
                dead.append(worker)
        for worker in dead:
            self._replace(worker)
        self._accept(self._take_inbox(), attempt=0)
        self._hand_out()

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
                if kind == _CREDIT:
                    worker.credits += 1
                elif kind == _INVOKE:
                    self._accept(body, attempt=0)
                else:
                    worker.held.pop(body, None)
        except (EOFError, OSError):
            return False
        return True

    def _accept(self, payloads: Sequence[bytes], attempt: int) -> None:
        """Queue new payloads; drop those seen before (a retried executor's repeated invocations)."""
        seen = self._seen
        for payload in payloads:
            digest = hashlib.blake2b(payload, digest_size=16).digest()
            if digest in seen:
                continue
            seen[digest] = None
            if len(seen) > _SEEN_CAPACITY:
                seen.popitem(last=False)
            self._pending.append((payload, attempt))

    def _hand_out(self) -> None:
        pending = self._pending
        while pending:
            ready = [worker for worker in self._workers if worker.credits > 0]
            if not ready:
                return
            worker = min(ready, key=lambda candidate: len(candidate.held))
            payload, attempt = pending.popleft()
            number = next(self._numbers)
            try:
                worker.connection.send((number, payload, attempt > 0))
            except OSError:
                pending.appendleft((payload, attempt))  # it died: its sentinel will tell
                worker.credits = 0
                return
            worker.credits -= 1
            worker.held[number] = (payload, attempt)

    def _replace(self, dead: _Worker) -> None:
        """A worker died: read what it sent before, retry what it held, start another in its place."""
        self._read(dead)
        dead.process.join(timeout=1)
        started = dead.started_numbers()
        code = dead.process.exitcode
        for number, (payload, attempt) in dead.held.items():
            if number not in started:
                self._pending.appendleft((payload, attempt))  # never began: deliver it as it was
            elif attempt + 1 >= self._max_attempts:
                self._failure = ComputeError(
                    f"{self._description}: an invocation killed its worker {attempt + 1} times "
                    f"(last: pid {dead.process.pid}, exit code {code}); it is not retried again"
                )
            else:
                self.retries += 1
                logger.warning(
                    "worker pid %s died (exit code %s) running an invocation; retrying it",
                    dead.process.pid,
                    code,
                )
                self._pending.appendleft((payload, attempt + 1))
        dead.connection.close()
        index = self._workers.index(dead)
        self._workers[index] = self._spawn(index)
        self.restarts += 1
