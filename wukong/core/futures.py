"""Persisted outputs: values a job left in the store, and the futures that stand for them in graphs.

``client.persist(x)`` runs ``x``'s graph as one job that keeps its requested outputs in the store
instead of sending them to the client, and returns ``x`` rebuilt on :class:`Future` objects. Dask
takes any object with ``__dask_future__ = True`` and a ``key`` as a stand-in for that key, so
every later graph built on the persisted collection depends on those keys; the client turns each
into a task that reads the stored value (:func:`held_node`), which an executor runs as a read, never
as a recompute.

**Lifetime.** A persisting job ends as any job does (its alive mark goes first, so no executor
of it writes again), but first writes its ``held`` mark and keeps that mark and its requested
outputs. Each output lives while a future for it does: when the last future of a value is
garbage-collected or released, the value goes, and when the job holds nothing more, its held mark
goes too. ``client.close()`` removes everything. While futures live, the client refreshes their
jobs' held marks, so ``wukong gc`` shows those jobs as running; if the client dies they show as
abandoned and can be removed, and every key still expires after ``key_ttl`` (the bound on a
persisted value's life, too).

**Threads.** A future is collected in whatever thread the garbage collector runs, possibly while
that thread holds this module's lock, so a collected future only queues its value
(:class:`queue.SimpleQueue` is safe there). The client's next compute, persist or
``client.futures``, or its heartbeat within a few seconds, removes what the queue names. One lock
orders the store's mark refreshes and removals, so a refresh never brings back a removed mark.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dask._task_spec import GraphNode, Task

from wukong.core.calls import Call
from wukong.errors import MissingKeyError, WukongError

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


def held_key(node: GraphNode | Call) -> str | None:
    """The store key a task reads, if it is a :func:`held_node`; else ``None``.

    On an executor the node may be a :class:`~wukong.core.calls.Call`, the lean form it travels in.
    """
    if getattr(node, "func", None) is held_output:
        return node.args[0]  # type: ignore[union-attr]
    return None


@dataclass(eq=False)
class HeldJob:
    """A persisted job's kept keys: its held mark and one stored output per requested key."""

    job: str
    mark: str
    submitted: float
    outputs: set[HeldOutput] = field(default_factory=set)


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
        # Only queues: collection may run in any thread, at any allocation (see the module text).
        self._finalizer = weakref.finalize(self, holdings.let_go.put, output)

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
        """Let go of the value; it leaves the store now if no other future stands for it."""
        self._released = True
        self._finalizer()
        self._holdings.settle()

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
    """The held keys' reading tasks (each key's newest value), made on lookup."""

    def __init__(self, outputs: dict[Key, list[HeldOutput]]):
        self._outputs = outputs

    def __getitem__(self, key: Key) -> GraphNode:
        return self._outputs[key][-1].node

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

Remove = Callable[[list[str], list[str]], None]  # metadata keys, data keys


class Holdings:
    """One client's persisted values: which keys are held, and their removal when let go.

    Args:
        remove: removes keys from the client's stores (metadata keys, data keys).
        read: reads and decodes one stored value by its store key.

    Attributes:
        let_go: the outputs whose futures were collected or released, not yet counted out.
        closed: whether the client closed (every value is gone).

    """

    def __init__(self, remove: Remove, read: Callable[[str], Any]):
        self._remove = remove
        self._read = read
        self._lock = threading.Lock()  # the tables; never held during store I/O
        self._store_lock = threading.Lock()  # orders mark refreshes and removals in the store
        self._by_key: dict[Key, list[HeldOutput]] = {}  # each key's live values, newest last
        self._jobs: dict[str, HeldJob] = {}
        self._released: set[Key] = set()  # keys once held here and let go (for a clear error)
        self.let_go: queue.SimpleQueue[HeldOutput] = queue.SimpleQueue()
        self.closed = False
        _every_holdings.add(self)

    def hold(
        self, job: str, mark: str, submitted: float, outputs: dict[Key, tuple[str, int | None]]
    ) -> list[Future]:
        """Hold job ``job``'s ``outputs`` (key: store key and size); a future for each, in order."""
        held = HeldJob(job, mark, submitted)
        made = [HeldOutput(key, store_key, nbytes, held) for key, (store_key, nbytes) in outputs.items()]
        with self._lock:
            if self.closed:
                raise WukongError(f"the client closed while job {job} persisted; nothing is held")
            self._jobs[job] = held
            for output in made:
                held.outputs.add(output)
                self._by_key.setdefault(output.key, []).append(output)
                self._released.discard(output.key)
        return [Future(output, self) for output in made]

    def count_in(self, output: HeldOutput) -> None:
        """One more future stands for ``output``."""
        with self._lock:
            output.futures += 1

    def settle(self) -> None:
        """Count out the futures let go so far; remove the values and marks nothing holds now."""
        with self._store_lock:
            marks, stored = [], []
            with self._lock:
                while True:
                    try:
                        output = self.let_go.get_nowait()
                    except queue.Empty:
                        break
                    output.futures -= 1
                    if output.futures == 0 and not self.closed:
                        stored.append(output.store_key)
                        marks += self._forget(output)
            if marks or stored:
                self._remove_quietly(marks, stored)

    def _forget(self, output: HeldOutput) -> list[str]:
        """Take ``output`` out of the tables; the job's mark, if it held nothing else."""
        values = self._by_key[output.key]
        values.remove(output)
        if not values:
            del self._by_key[output.key]
            self._released.add(output.key)
        job = output.job
        job.outputs.discard(output)
        if job.outputs:
            return []
        del self._jobs[job.job]
        return [job.mark]

    def nodes(self) -> Mapping[Key, GraphNode]:
        """A task per held key, reading its newest value: what graphs that use the futures depend on.

        Values let go so far are removed first. The result is a view, whatever the number of keys
        held; a graph takes only the keys it needs.
        """
        self.settle()
        return _HeldNodes(self._by_key)

    def refresh(self, write: Callable[[dict[str, float]], None]) -> None:
        """Call ``write`` with the held jobs' marks and submission times (the heartbeat)."""
        self.settle()
        with self._store_lock:
            with self._lock:
                marks = {job.mark: job.submitted for job in self._jobs.values()}
            if marks and not self.closed:
                write(marks)

    def listing(self) -> dict[Key, int | None]:
        """Every held key and the stored size of its newest value."""
        self.settle()
        with self._lock:
            return {key: values[-1].nbytes for key, values in self._by_key.items()}

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
        with self._store_lock:
            with self._lock:
                self.closed = True
                marks = [job.mark for job in self._jobs.values()]
                stored = [output.store_key for job in self._jobs.values() for output in job.outputs]
                self._jobs.clear()
                self._by_key.clear()
            if marks or stored:
                self._remove_quietly(marks, stored)

    def _remove_quietly(self, marks: list[str], stored: list[str]) -> None:
        # A store that fails here leaves keys that expire after key_ttl (and `wukong gc` lists
        # them): that must not fail the client call that happened to settle the queue.
        try:
            self._remove(marks, stored)
        except Exception:
            left = (marks + stored)[:4]
            logger.warning("could not remove persisted keys %s; they expire after key_ttl", left)
