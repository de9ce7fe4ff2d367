"""Persisted outputs: values a job left in the store, and the futures that stand for them in graphs.

``client.persist(x)`` runs ``x``'s graph as one job that keeps its requested outputs in the store
instead of sending them to the client, and returns ``x`` rebuilt on :class:`Future` objects. Dask
takes any object with ``__dask_future__ = True`` and a ``key`` as a stand-in for that key, so
every later graph built on the persisted collection depends on those keys; the client turns each
into a task that reads the stored value (:func:`held_node`), which an executor runs as a read, never
as a recompute.

**Lifetime.** A persisting job keeps its alive mark and its requested outputs; everything else of
it goes at its end, as for any job. Each output lives while a future for it does: when the last
future of a key is garbage-collected (or :meth:`Future.release`), its stored value goes, and when
the job holds nothing more, its alive mark goes too. ``client.close()`` releases everything. While
futures are held, the client refreshes their jobs' alive marks, so ``wukong gc`` shows them as
running; if the client dies, they show as abandoned and can be removed, and every key still expires
after ``key_ttl`` (the bound on a persisted value's life, too).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dask._task_spec import GraphNode, Task

from wukong.errors import MissingKeyError

Key = Hashable
_every_holdings: weakref.WeakSet[Holdings] = weakref.WeakSet()  # every client's, in this process

logger = logging.getLogger("wukong.futures")


def held_output(store_key: str) -> Any:
    """The function of a task that reads a persisted value; wukong's executors read it instead.

    It is never called by wukong; a scheduler other than wukong's that runs it gets this error.
    """
    raise RuntimeError(
        f"this task reads a value wukong persisted ({store_key}); compute it with the wukong "
        "client that persisted it"
    )


def held_node(key: Key, store_key: str) -> GraphNode:
    """The task standing for persisted value ``key``, stored under ``store_key``."""
    return Task(key, held_output, store_key)


def held_key(node: GraphNode) -> str | None:
    """The store key a task reads, if it is a :func:`held_node`; else ``None``."""
    if isinstance(node, Task) and node.func is held_output:
        return node.args[0]
    return None


@dataclass(eq=False)
class HeldJob:
    """A persisting job's kept keys: its alive mark and one stored output per requested key."""

    job: str
    alive: str
    submitted: float
    outputs: dict[Key, HeldOutput] = field(default_factory=dict)


@dataclass(eq=False)
class HeldOutput:
    """One persisted value: where it is, its size, and how many futures stand for it."""

    key: Key
    store_key: str
    nbytes: int | None
    job: HeldJob
    futures: int = 0

    @property
    def node(self) -> GraphNode:
        """The task that reads this value, standing for its key in a later job's graph."""
        return held_node(self.key, self.store_key)


class Future:
    """A persisted value in the store, standing for its key in Dask graphs (Dask's future protocol).

    Attributes:
        key: the Dask key it stands for.

    """

    __dask_future__ = True

    def __init__(self, output: HeldOutput, holdings: Holdings):
        self._output = output
        self._holdings = holdings
        self._released = False
        holdings.count_in(output)
        self._finalizer = weakref.finalize(self, holdings.count_out, output)

    @property
    def key(self) -> Key:
        """The Dask key this future stands for."""
        return self._output.key

    @property
    def nbytes(self) -> int | None:
        """The stored (serialized) size of the value, where the store can tell."""
        return self._output.nbytes

    @property
    def released(self) -> bool:
        """Whether this future was released (or its client closed)."""
        return self._released or self._holdings.closed

    def result(self) -> Any:
        """The value, read from the store."""
        self._holdings.check(self)
        return self._holdings.read(self._output)

    def release(self) -> None:
        """Let go of the value; the store removes it once no future stands for it."""
        self._released = True
        self._finalizer()

    def holds(self, holdings: Holdings) -> bool:
        """Whether this future belongs to ``holdings`` (one client's)."""
        return self._holdings is holdings

    def __dask_tokenize__(self) -> Any:
        return ("wukong-future", self._output.store_key)

    def __reduce__(self) -> Any:
        raise TypeError(
            f"a wukong future ({self.key!r}) cannot be pickled: it belongs to the client that "
            "persisted it; use future.result() for its value"
        )

    def __repr__(self) -> str:
        state = "released" if self.released else f"{self.nbytes} bytes" if self.nbytes is not None else "held"
        return f"<wukong.Future {self.key!r}: {state}>"


class _HeldNodes(Mapping[Key, GraphNode]):
    """The held keys' reading tasks, made on lookup."""

    def __init__(self, outputs: dict[Key, HeldOutput]):
        self._outputs = outputs

    def __getitem__(self, key: Key) -> GraphNode:
        return self._outputs[key].node

    def __contains__(self, key: object) -> bool:
        return key in self._outputs

    def __iter__(self) -> Iterator[Key]:
        return iter(list(self._outputs))

    def __len__(self) -> int:
        return len(self._outputs)


_ANOTHER_CLIENT = (
    "future {key!r} belongs to another wukong client (or store): a future is read only through "
    "the client that persisted it"
)


class Holdings:
    """One client's persisted values: which keys are held, and their removal when let go.

    ``remove(metadata_keys, data_keys)`` removes keys from the client's stores; ``read(store_key)``
    reads and decodes one value.
    """

    def __init__(self, remove: Callable[[list[str], list[str]], None], read: Callable[[str], Any]):
        self._remove = remove
        self._read = read
        self._lock = threading.Lock()
        self._by_key: dict[Key, HeldOutput] = {}  # the newest persisted value of each key
        self._jobs: dict[str, HeldJob] = {}
        self._released: set[Key] = set()  # keys once held here and let go (for a clear error)
        self.closed = False
        _every_holdings.add(self)

    def hold(
        self, job: str, alive: str, submitted: float, outputs: dict[Key, tuple[str, int | None]]
    ) -> list[Future]:
        """Hold job ``job``'s ``outputs`` (key: store key and size); a future for each, in order."""
        held = HeldJob(job, alive, submitted)
        with self._lock:
            self._jobs[job] = held
            for key, (store_key, nbytes) in outputs.items():
                held.outputs[key] = self._by_key[key] = HeldOutput(key, store_key, nbytes, held)
                self._released.discard(key)
        return [Future(output, self) for output in held.outputs.values()]

    def count_in(self, output: HeldOutput) -> None:
        """One more future stands for ``output``."""
        with self._lock:
            output.futures += 1

    def count_out(self, output: HeldOutput) -> None:
        """A future of ``output`` is gone; remove the value if it was the last (and the job's mark)."""
        with self._lock:
            output.futures -= 1
            if output.futures > 0 or self.closed:
                return
            job = output.job
            del job.outputs[output.key]
            if self._by_key.get(output.key) is output:
                del self._by_key[output.key]
                self._released.add(output.key)
            marks = []
            if not job.outputs:
                del self._jobs[job.job]
                marks.append(job.alive)
        self._remove_quietly(marks, [output.store_key])

    def nodes(self) -> Mapping[Key, GraphNode]:
        """A task per held key, reading its value: what graphs that use the futures depend on.

        A view, made in constant time however many keys are held; a graph takes only those it needs.
        """
        return _HeldNodes(self._by_key)

    def alive_marks(self) -> dict[str, float]:
        """The alive marks of the jobs whose outputs are held, with when each job was submitted."""
        with self._lock:
            return {job.alive: job.submitted for job in self._jobs.values()}

    def listing(self) -> dict[Key, int | None]:
        """Every held key and its stored size."""
        with self._lock:
            return {key: output.nbytes for key, output in self._by_key.items()}

    def explain(self, missing: list[Key]) -> None:
        """Raise a clear error if a key a graph lacks was a future's: let go here, or another client's."""
        for key in missing:
            if key in self._released or self.closed:
                raise MissingKeyError(
                    f"future {key!r} was released (or its client closed), so its value is gone "
                    "from the store; persist the collection again",
                    [key],
                )
            if any(key in other._by_key for other in list(_every_holdings) if other is not self):
                raise MissingKeyError(_ANOTHER_CLIENT.format(key=key), [key])

    def check(self, future: Future) -> None:
        """Raise a clear error if ``future`` cannot be used here."""
        if not future.holds(self):
            raise MissingKeyError(_ANOTHER_CLIENT.format(key=future.key), [future.key])
        if future.released:
            raise MissingKeyError(
                f"future {future.key!r} was released (or its client closed), so its value is gone "
                "from the store; persist the collection again",
                [future.key],
            )

    def read(self, output: HeldOutput) -> Any:
        """The value of ``output``, read from the store."""
        return self._read(output.store_key)

    def close(self) -> None:
        """Remove every held value and mark (the client closes)."""
        with self._lock:
            self.closed = True
            marks = [job.alive for job in self._jobs.values()]
            stored = [output.store_key for job in self._jobs.values() for output in job.outputs.values()]
            self._jobs.clear()
            self._by_key.clear()
        if marks or stored:
            self._remove_quietly(marks, stored)

    def _remove_quietly(self, marks: list[str], stored: list[str]) -> None:
        # Called from garbage collection too, where an exception would only be printed: a store
        # that fails here leaves keys that expire after key_ttl (and `wukong gc` lists them).
        try:
            self._remove(marks, stored)
        except Exception:
            logger.warning(
                "could not remove persisted keys %s; they expire after key_ttl", (marks + stored)[:4]
            )
