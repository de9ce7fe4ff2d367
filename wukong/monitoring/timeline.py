"""Per-task timings: what each executor did and when, for progress reports and the task stream.

An executor keeps one row per task it runs (cheap: a few clock reads and integers) and stores all
its rows under one key in the same batch that counts it out, so recording costs no extra round
trip. The client reads every executor's rows once the job has ended and turns them into
:class:`TaskRecord` objects, naming each task by its Dask key.

Times are wall-clock seconds since the epoch (``time.time()``), so rows written by executors on
different machines line up on one axis, as far as those machines' clocks agree.
"""

from __future__ import annotations

import os
import pickle
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# The fields of a row, in order (a row is a list while the task runs, a tuple once stored).
_TASK, _STARTED, _READ, _COMPUTED, _WRITTEN, _ENDED, _INVOCATIONS, _BYTES_READ, _BYTES_WRITTEN = range(9)

PHASES = ("read", "compute", "write", "invoke")
"""The phases of a task, in the order they happen."""


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task as one executor ran it.

    Attributes:
        task: the task's index in the job's graph.
        key: the task's Dask key, as text.
        executor: the executor that ran it, named by the task it was invoked for.
        worker: the process it ran in (``host:pid``); warm workers run many executors.
        started: when reading its inputs began (seconds since the epoch).
        read_done: when every input was in memory.
        computed: when the task's function returned.
        written: when its output was stored (if it had to be) and its dependents' counters set.
        ended: when the executors of its other ready dependents were invoked.
        invocations: how many executors it invoked.
        bytes_read: serialized bytes of its inputs read from storage.
        bytes_written: serialized bytes of its output written to storage.

    """

    task: int
    key: str
    executor: int
    worker: str
    started: float
    read_done: float
    computed: float
    written: float
    ended: float
    invocations: int
    bytes_read: int
    bytes_written: int

    def span(self, phase: str) -> tuple[float, float]:
        """When one of :data:`PHASES` began and ended (seconds since the epoch)."""
        moments = (self.started, self.read_done, self.computed, self.written, self.ended)
        index = PHASES.index(phase)
        return moments[index], moments[index + 1]

    def seconds(self, phase: str) -> float:
        """How long one of :data:`PHASES` took."""
        start, end = self.span(phase)
        return max(end - start, 0.0)

    @property
    def total_seconds(self) -> float:
        """From the first input read to the last invocation."""
        return max(self.ended - self.started, 0.0)


class ExecutorTimeline:
    """The rows of the tasks one executor runs; ``enabled=False`` keeps nothing."""

    def __init__(self, executor: int, enabled: bool):
        self.executor = executor
        self.enabled = enabled
        self._rows: dict[int, list] = {}

    def start(self, task: int) -> None:
        """Task ``task`` starts reading its inputs."""
        if self.enabled:
            now = time.time()
            self._rows[task] = [task, now, now, now, now, now, 0, 0, 0]

    def read(self, task: int, nbytes: int) -> None:
        """Every input of ``task`` is in memory; ``nbytes`` of them came from storage."""
        if self.enabled:
            row = self._rows[task]
            row[_READ] = time.time()
            row[_BYTES_READ] = nbytes

    def computed(self, task: int) -> None:
        """The function of ``task`` returned."""
        if self.enabled:
            self._rows[task][_COMPUTED] = time.time()

    def written(self, task: int) -> None:
        """The output of ``task`` is stored (or need not be) and its counters are set."""
        if self.enabled:
            row = self._rows[task]
            row[_WRITTEN] = row[_ENDED] = time.time()

    def invoked(self, task: int, count: int) -> None:
        """``task`` invoked ``count`` executors."""
        if self.enabled:
            row = self._rows[task]
            row[_ENDED] = time.time()
            row[_INVOCATIONS] += count

    def wrote(self, task: int, nbytes: int) -> None:
        """``nbytes`` of the output of ``task`` went to storage (maybe after the task ended)."""
        row = self._rows.get(task)
        if row is not None:
            row[_BYTES_WRITTEN] += nbytes

    def __len__(self) -> int:
        """How many tasks it has rows for."""
        return len(self._rows)

    def encode(self) -> bytes | None:
        """The rows as stored, or ``None`` when there are none."""
        if not self._rows:
            return None
        rows = [tuple(row) for row in self._rows.values()]
        return pickle.dumps((self.executor, _worker, rows), protocol=5)


def _name_worker() -> None:
    """Name this process ``host:pid`` once (and again in a forked child), not once per executor."""
    global _worker
    _worker = f"{socket.gethostname()}:{os.getpid()}"


_worker = ""
_name_worker()
os.register_at_fork(after_in_child=_name_worker)


def decode(blob: bytes, keys: Sequence[object]) -> Iterator[TaskRecord]:
    """The records stored by one executor; ``keys`` gives each task's Dask key by index."""
    executor, worker, rows = pickle.loads(blob)
    for row in rows:
        task = row[_TASK]
        yield TaskRecord(
            task,
            str(keys[task]),
            executor,
            worker,
            *row[_STARTED : _ENDED + 1],
            *row[_INVOCATIONS:],
        )
