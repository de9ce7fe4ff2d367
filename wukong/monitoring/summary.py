"""A job's task records boiled down: totals per phase, the busiest path, and the job's metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from wukong.monitoring import timeline
from wukong.monitoring.metrics import Metrics
from wukong.monitoring.timeline import PHASES, TaskRecord


@dataclass(frozen=True)
class Summary:
    """What a job's executors did, in a few numbers (see :attr:`JobMetrics.summary`).

    Attributes:
        tasks: tasks that ran (a task an executor ran twice counts once).
        executors: executors that ran tasks.
        workers: processes (or Lambda containers) they ran in.
        invocations: executors invoked by executors (the client's leaves not included).
        bytes_read: serialized bytes of inputs read from storage.
        bytes_written: serialized bytes of outputs written to storage.
        seconds: time spent in each of ``read``, ``compute``, ``write`` and ``invoke``, summed over
            tasks.
        span_seconds: from the first task's start to the last task's end.
        critical_path_seconds: the longest chain of dependent tasks, by their own durations.

    """

    tasks: int
    executors: int
    workers: int
    invocations: int
    bytes_read: int
    bytes_written: int
    seconds: dict[str, float]
    span_seconds: float
    critical_path_seconds: float


_Stored = tuple[Sequence[bytes], Sequence[object], Sequence[Sequence[int]], Sequence[int]]
"""Records as executors stored them, the keys, each task's inputs, and an order of the tasks."""


class JobMetrics:
    """A job's metrics: the executors' counters, one record per task, and their summary.

    Task records are decoded on first use, so a job whose records nobody reads does not pay for
    them.

    Attributes:
        totals: storage traffic and what locality saved, summed over executors.

    """

    def __init__(
        self,
        totals: Metrics | None = None,
        tasks: Sequence[TaskRecord] = (),
        critical_path: Sequence[str] = (),
        critical_path_seconds: float = 0.0,
    ):
        self.totals = totals if totals is not None else Metrics()
        self._tasks = list(tasks)
        self._critical_path = list(critical_path)
        self._critical_path_seconds = critical_path_seconds
        self._stored: _Stored | None = None

    @classmethod
    def from_stored(
        cls,
        totals: Metrics,
        blobs: Sequence[bytes],
        keys: Sequence[object],
        dependencies: Sequence[Sequence[int]],
        order: Sequence[int],
    ) -> JobMetrics:
        """The metrics of a job whose executors stored ``blobs`` (see :mod:`wukong.monitoring.timeline`)."""
        metrics = cls(totals)
        metrics._stored = (blobs, keys, dependencies, order)
        return metrics

    def _decode(self) -> None:
        if self._stored is None:
            return
        blobs, keys, dependencies, order = self._stored
        self._stored = None
        tasks = [record for blob in blobs for record in timeline.decode(blob, keys)]
        tasks.sort(key=lambda record: record.started)
        path, self._critical_path_seconds = critical_path(tasks, dependencies, order)
        self._tasks, self._critical_path = tasks, [str(keys[task]) for task in path]

    @property
    def tasks(self) -> list[TaskRecord]:
        """One :class:`~wukong.monitoring.timeline.TaskRecord` per task run, in start order.

        Empty when task records are turned off.
        """
        self._decode()
        return self._tasks

    @property
    def critical_path(self) -> list[str]:
        """The keys of the longest chain of dependent tasks, first to last."""
        self._decode()
        return self._critical_path

    @property
    def critical_path_seconds(self) -> float:
        """That chain's duration, by its tasks' own durations."""
        self._decode()
        return self._critical_path_seconds

    @property
    def summary(self) -> Summary:
        """The task records in a few numbers."""
        tasks = self.tasks
        seconds = {phase: sum(record.seconds(phase) for record in tasks) for phase in PHASES}
        span = max((r.ended for r in tasks), default=0.0) - min((r.started for r in tasks), default=0.0)
        return Summary(
            tasks=len({record.task for record in tasks}),
            executors=len({record.executor for record in tasks}),
            workers=len({record.worker for record in tasks}),
            invocations=sum(record.invocations for record in tasks),
            bytes_read=sum(record.bytes_read for record in tasks),
            bytes_written=sum(record.bytes_written for record in tasks),
            seconds=seconds,
            span_seconds=span,
            critical_path_seconds=self.critical_path_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything in plain JSON types."""
        return {
            "totals": asdict(self.totals),
            "tasks": [asdict(record) for record in self.tasks],
            "critical_path": self.critical_path,
            "critical_path_seconds": self.critical_path_seconds,
            "summary": asdict(self.summary),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobMetrics:
        """The metrics :meth:`to_dict` made."""
        return cls(
            Metrics(**data["totals"]),
            [TaskRecord(**record) for record in data["tasks"]],
            data["critical_path"],
            data["critical_path_seconds"],
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobMetrics) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"JobMetrics(totals={self.totals!r}, tasks=[{len(self.tasks)} records])"


def critical_path(
    records: Sequence[TaskRecord], dependencies: Sequence[Sequence[int]], order: Sequence[int]
) -> tuple[list[int], float]:
    """The chain of dependent tasks with the longest total duration, and that duration.

    ``dependencies`` gives each task's inputs by index; ``order`` lists the indices, each after its
    inputs (a task graph's ``order``). Tasks without a record (not run, or not recorded) take no
    time.
    """
    duration = [0.0] * len(dependencies)
    for record in records:
        duration[record.task] = max(duration[record.task], record.total_seconds)
    finish = [0.0] * len(dependencies)
    before: list[int | None] = [None] * len(dependencies)
    for task in order:
        inputs = dependencies[task]
        longest = max(inputs, key=finish.__getitem__, default=None)
        before[task] = longest
        finish[task] = duration[task] + (finish[longest] if longest is not None else 0.0)
    if not finish:
        return [], 0.0
    last: int | None = max(range(len(finish)), key=finish.__getitem__)
    total = finish[last]
    path = []
    while last is not None:
        path.append(last)
        last = before[last]
    return path[::-1], total
