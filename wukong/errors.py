"""Exceptions raised by wukong.

Every error says what went wrong, where (a task key, a store address, a backend name) and, where there
is one, what to do about it. A task's own exception is re-raised unchanged on the client (as Dask's
schedulers do); :class:`TaskError` only stands in for an exception that could not travel.
"""

from __future__ import annotations

from collections.abc import Hashable


class WukongError(Exception):
    """Base class of every error wukong raises itself."""

    def __reduce__(self) -> tuple:
        # Executors send a task's exception to the client pickled, and subclasses take other
        # arguments than their message: rebuild the error as it was, without calling __init__.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[WukongError], args: tuple, state: dict) -> WukongError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(WukongError, ValueError):
    """The configuration names an unknown backend, or a backend option is invalid."""


class GraphError(WukongError, ValueError):
    """The task graph cannot run: a cycle, or a dependency that no task produces.

    Attributes:
        keys: the task keys involved (the cycle, or the tasks with a missing dependency).
        missing: the keys that no task produces (a missing dependency, or a requested key).

    """

    def __init__(self, message: str, keys: list[Hashable], missing: list[Hashable] | None = None):
        super().__init__(message)
        self.keys = keys
        self.missing = missing or []


class MissingKeyError(GraphError, KeyError):
    """A requested key is not in the graph (a ``KeyError`` too, as Dask's ``get`` protocol wants)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; show the sentence as written.
        return str(self.args[0])


class TaskError(WukongError):
    """A task failed and its own exception could not be sent back to the client.

    Attributes:
        key: the key of the task that failed.
        exception_type: the name of the original exception's type.
        remote_traceback: the traceback as formatted in the executor.
        logs: the executor's last log lines before the failure (empty when none were kept).

    """

    def __init__(
        self, key: Hashable, exception_type: str, message: str, remote_traceback: str, logs: str = ""
    ):
        super().__init__(f"task {key!r} raised {exception_type}: {message}")
        self.key = key
        self.exception_type = exception_type
        self.remote_traceback = remote_traceback
        self.logs = logs


class SerializationError(WukongError, TypeError):
    """A task's function, arguments or result cannot be serialized for storage.

    Attributes:
        key: the key of the task whose object cannot be serialized.

    """

    def __init__(self, key: Hashable, cause: BaseException, what: str = "definition"):
        super().__init__(
            f"task {key!r}: its {what} cannot be serialized "
            f"({type(cause).__name__}: {cause}); wukong ships tasks and results with cloudpickle, "
            "so every function, argument and result must be picklable"
        )
        self.key = key


class StorageError(WukongError):
    """A storage backend cannot be reached or failed during a job."""


class JobEndedError(StorageError):
    """A write for a job that has ended (its alive mark is gone) was refused, or undone.

    Executors that outlive their job (a timeout, a failure elsewhere, a client that gave up) meet
    it at their next write and stop: nothing they write after the end stays in the store.
    """


class JobLostError(StorageError):
    """The store lost a running job's keys (its server restarted empty, or evicted them).

    The job cannot finish: its counters and records are gone. Executors still running may write a
    few keys into the store after the error; the client sweeps the job's prefix until they stop.
    """


class ComputeError(WukongError):
    """A compute backend cannot run invocations (a worker died, the pool is closed...)."""


class JobTimeoutError(WukongError, TimeoutError):
    """A job did not finish within the configured ``timeout``."""
