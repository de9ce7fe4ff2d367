"""Records executors append to a job's record list: a result is ready, a task failed, a dir to remove.

A failed task's record carries its exception (pickled by cloudpickle when it can travel), the type
name, the message, the formatted remote traceback and the executor's last log lines, so the client
can re-raise the task's own exception with those attached, or a :class:`~wukong.errors.TaskError`
with the same facts.
"""

from __future__ import annotations

import pickle
import traceback
from dataclasses import dataclass
from typing import Any

from wukong.core import codec
from wukong.errors import TaskError

MAX_EXCEPTION_BYTES = 256 * 1024
MAX_TEXT = 64 * 1024


def _cut(text: str) -> str:
    """``text``, or its head and tail with the middle left out when it is over :data:`MAX_TEXT`."""
    if len(text) <= MAX_TEXT:
        return text
    half = MAX_TEXT // 2
    return f"{text[:half]}\n... ({len(text) - 2 * half:,} characters left out) ...\n{text[-half:]}"


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """Task ``task`` (a requested key) has its output stored."""

    task: int


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """Task ``task`` (key ``key``) failed; ``exception`` is the pickled exception or ``None``.

    ``logs`` holds the executor's last log lines before the failure.
    """

    task: int
    key: Any
    exception: bytes | None
    exception_type: str
    message: str
    remote_traceback: str
    logs: str = ""

    @classmethod
    def from_exception(cls, task: int, key: Any, error: BaseException, logs: str = "") -> ErrorRecord:
        """Capture ``error`` (raised by task ``task``) with its traceback, within a bounded size.

        A record must fit any store's list item (memcached's is 1 MiB), or the failure would never
        reach the client: a huge exception travels as a :class:`TaskError` with its message and
        traceback cut to :data:`MAX_TEXT` characters each.
        """
        formatted = "".join(traceback.format_exception(error))
        message = str(error)
        try:
            pickled = codec.dumps_code(error)
            pickle.loads(pickled)
        except Exception:
            pickled = None  # it cannot travel: the client raises a TaskError instead
        if pickled is not None and len(pickled) > MAX_EXCEPTION_BYTES:
            pickled = None
        return cls(task, key, pickled, type(error).__qualname__, _cut(message), _cut(formatted), _cut(logs))

    def to_exception(self, job: str) -> BaseException:
        """The exception the client raises: the task's own, with a note naming task and job."""
        error: BaseException | None = None
        if self.exception is not None:
            try:
                error = pickle.loads(self.exception)
            except Exception:
                error = None
        if error is None:
            return TaskError(self.key, self.exception_type, self.message, self.remote_traceback, self.logs)
        error.add_note(
            f"wukong: task {self.key!r} of job {job} failed; remote traceback:\n"
            f"{self.remote_traceback.rstrip()}"
        )
        if self.logs:
            error.add_note(f"wukong: the executor's last log lines:\n{self.logs.rstrip()}")
        return error


@dataclass(frozen=True, slots=True)
class DoneRecord:
    """Task ``task`` ran and its output is stored (centralized scheduling only).

    The client, not the executor, then invokes the dependents it made ready.
    """

    task: int


@dataclass(frozen=True, slots=True)
class ScratchRecord:
    """A task made directory ``path`` for other tasks to share (a disk shuffle's partd directory).

    The job removes it when it ends (see :mod:`wukong.core.shuffles`).
    """

    path: str


Record = ResultRecord | ErrorRecord | DoneRecord | ScratchRecord


def encode(record: Record) -> bytes:
    """The bytes appended to the record list."""
    return pickle.dumps(record, protocol=5)


def decode(data: bytes) -> Record:
    """Read a record made by :func:`encode`."""
    return pickle.loads(data)
