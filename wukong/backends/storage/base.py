"""The storage interfaces: two store roles, an optional fast path, and the base classes stores subclass.

A job keeps everything under its key prefix, in stores that play one or both of two roles:

* an **object store** (:class:`ObjectStore`) keeps objects (task outputs, schedule pages), written
  once and read many times: ``put``, ``get`` and their batch forms, ``delete_many``, ``list_keys``;
* a **coordination store** (:class:`CoordinationStore`) keeps what executors agree through:
  dependency counters, one bit per dependency (``set_bit_and_count``: setting a bit again returns
  the count its first setting saw, so a retried executor neither counts twice nor takes another
  executor's turn), plain counters (``increment``: the live-executor count, metrics), and the
  job's append-only record list, which the client takes with a blocking ``pop_all``.

A job's *metadata store* plays both roles (its schedule pages and marks are objects); its *data
store*, the same store or another, only needs to be an object store. S3 is one: it subclasses
:class:`ObjectStorageBackend`, declares ``atomic_counters=False``, and serves beside a metadata
store. A store that can coordinate subclasses :class:`StorageBackend`.

The executor protocol writes in a few fixed batches (an output then its counters; an executor's
last records then its metrics and count-out). A store that can send such a batch in one round trip
declares ``batched_writes`` and implements :class:`BatchedWrites`; the core uses those methods
then, and otherwise takes the plain operations one at a time, in the protocol's order
(:mod:`wukong.core.batches`). Stores implement no fallbacks themselves.

Executors and the client write through a view of the store scoped to their job
(:meth:`ObjectStorageBackend.scoped`, with a :class:`WriteScope`): the view gives every key it
writes a bounded lifetime and, where the store can, refuses every write once the job's alive mark
is gone. Both are optional capabilities; the core makes up for a store that lacks the second (see
:mod:`wukong.core.fence`).

Every operation raises :class:`wukong.errors.StorageError`, naming the store, when the store fails.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, ParamSpec, Protocol, Self, TypeVar, runtime_checkable

from wukong.backends.options import BackendOptions
from wukong.errors import StorageError

P = ParamSpec("P")
R = TypeVar("R")


def translate_errors(
    *client_errors: type[BaseException],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator for store methods: ``client_errors`` become a :class:`StorageError`.

    The message names the store (its :meth:`ObjectStorageBackend.describe`), the method and the client's
    error, so a user sees which store and address failed, and how.
    """

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except client_errors as error:
                store: ObjectStorageBackend = args[0]  # type: ignore[assignment]
                raise StorageError(
                    f"{store.describe()} failed in {method.__name__}: {type(error).__name__}: {error}"
                ) from error

        return wrapper

    return decorate


@dataclass(frozen=True)
class StorageCapabilities:
    """What a store can do; the core checks these, never ``hasattr``.

    Attributes:
        atomic_counters: the store is a :class:`CoordinationStore`: ``set_bit_and_count``,
            ``increment`` and the record list are atomic across processes (a store without them
            can only be a data store).
        shared_across_processes: executors in other processes (or machines) can reach it; the
            ideal store lives in one process and needs the threads mode.
        stores_objects: values are kept as Python objects, not bytes, so executors skip
            serialization (the ideal store's zero-copy access).
        max_object_bytes: the largest object the store accepts, or ``None`` for no limit.
        conditional_increments: :meth:`CoordinationStore.increment_once` is atomic (speculative
            execution needs it: two attempts of one invocation must count once between them).
        fenced_writes: a view from :meth:`ObjectStorageBackend.scoped` with an ``alive`` key raises
            :class:`~wukong.errors.JobEndedError` for every write made once that key is gone, and
            leaves nothing of it in the store, at no extra round trip.
        expiring_keys: a view from :meth:`ObjectStorageBackend.scoped` gives every key it writes the
            scope's lifetime.
        evicts: the store may drop a key before it is deleted or expires (memcached, when it runs
            out of memory), so it cannot keep a persisted value for later jobs.
        batched_writes: the store (and every view from its ``scoped``) implements
            :class:`BatchedWrites`, sending each of the executor protocol's write batches in one
            round trip; without it the core takes the plain operations one at a time.

    """

    atomic_counters: bool = True
    shared_across_processes: bool = True
    stores_objects: bool = False
    max_object_bytes: int | None = None
    conditional_increments: bool = False
    fenced_writes: bool = False
    expiring_keys: bool = False
    evicts: bool = False
    batched_writes: bool = False


@dataclass(frozen=True)
class WriteScope:
    """What a view from :meth:`ObjectStorageBackend.scoped` does to its writes.

    Attributes:
        alive: a key in this store; once it is gone, every write through the view is refused (or
            undone) with :class:`~wukong.errors.JobEndedError` (stores with ``fenced_writes``).
            ``None``: no such check.
        ttl_seconds: every key written through the view expires after this many seconds (stores
            with ``expiring_keys``); ``None``: keys never expire.

    """

    alive: str | None = None
    ttl_seconds: int | None = None


class CountOut(NamedTuple):
    """An executor's last batch, as :meth:`BatchedWrites.append_and_increment` takes it.

    Its task records (appended to ``records_key``, unless ``None``), then ``amounts``: its metrics
    and its count-out.
    """

    records_key: str
    records: bytes | None
    amounts: Mapping[str, int]


class Counted(NamedTuple):
    """What :meth:`BatchedWrites.put_count_and_read` did.

    The count; the values it read (``None``: it read none); whether it applied the count-out.
    """

    count: int
    values: list[Any] | None
    ended: bool


@runtime_checkable
class ObjectStore(Protocol):
    """The object-store role: task outputs and schedule pages, by key.

    The core writes each object key once (a retried executor may write the same key again, with an
    equal value), so a store may assume no object changes size under a reader. Values are bytes, or
    any object in a store that declares ``stores_objects``. Every method may be called from many
    threads at once, and raises :class:`~wukong.errors.StorageError` naming the store when the
    store fails.
    """

    def check(self) -> None:
        """Raise :class:`~wukong.errors.StorageError` unless the store answers."""
        ...

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``."""
        ...

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Store several objects (every one of them before returning)."""
        ...

    def get(self, key: str) -> Any:
        """Return the value under ``key``, or ``None``."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """Return the values under ``keys``, in order, with ``None`` for a missing key."""
        ...

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove ``keys`` (of any kind: objects, counters, lists); missing keys are ignored."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Return every key that starts with ``prefix``, in any order (clean-up, ``wukong gc``, tests)."""
        ...

    def sizes(self, keys: Sequence[str]) -> list[int | None]:
        """Return roughly how many bytes each key takes (``None``: unknown), for ``wukong gc``."""
        ...

    def close(self) -> None:
        """Release connections (and, for an embedded store, stop its server)."""
        ...


@runtime_checkable
class CoordinationStore(Protocol):
    """The coordination role: dependency counters, plain counters and the job's record list.

    Every operation is atomic across every process that opens the store (the store declares
    ``atomic_counters``), may be called from many threads at once, and raises
    :class:`~wukong.errors.StorageError` naming the store when the store fails.
    """

    def check(self) -> None:
        """Raise :class:`~wukong.errors.StorageError` unless the store answers."""
        ...

    def set_bit_and_count(self, key: str, bit: int) -> int:
        """Set bit ``bit`` of the counter ``key`` and return how many of its bits are set, atomically.

        Setting a bit again changes nothing and returns the count its *first* setting returned. So
        the executor that completes a counter is decided once: a retried executor sees the answer
        its crashed attempt saw, and replays the same decisions (it cannot complete a counter early,
        nor believe it completed one that another executor did).
        """
        ...

    def count_bits(self, key: str) -> int:
        """Return how many bits of the counter ``key`` are set (0 when missing), changing nothing.

        Delayed I/O polls a dependent's counter with it.
        """
        ...

    def increment(self, key: str, amount: int) -> int:
        """Add ``amount`` to the integer under ``key`` (missing: 0) and return the new value.

        ``amount`` may be negative; the core never takes a counter below zero, and a store may
        stop at zero. ``increment(key, 0)`` reads a counter without creating it.
        """
        ...

    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """Apply several :meth:`increment` calls, in order: the last lands after the others.

        Executors send their metrics before their count-out, and the client reads the metrics
        once the live count reaches zero.
        """
        ...

    def increment_once(
        self, guard: str, amounts: Mapping[str, int], *, while_positive: str | None = None
    ) -> bool:
        """Set ``guard`` and apply ``amounts``, atomically, unless ``guard`` is set already.

        With ``while_positive``, also only if the counter under that key is above zero at that
        moment (a backup joins a job's live count only while the job is alive: once the client has
        read zero there, it removes the job's keys). Returns whether this call applied the
        amounts. Needed only from a store that declares ``conditional_increments``: of two
        attempts of one invocation running at once (a speculative backup), exactly one counts each
        thing in or out. Other stores raise :class:`~wukong.errors.StorageError`.
        """
        ...

    def append(self, key: str, record: bytes) -> None:
        """Append ``record`` to the list ``key`` (records of one writer keep their order)."""
        ...

    def pop_all(self, key: str, timeout: float) -> list[bytes]:
        """Remove and return every record of list ``key``, oldest first.

        Blocks up to ``timeout`` seconds for the first record and returns as soon as one is there;
        returns ``[]`` when none arrived (at once for a ``timeout`` of 0, never waiting forever).
        """
        ...

    def close(self) -> None:
        """Release connections (and, for an embedded store, stop its server)."""
        ...


@runtime_checkable
class BatchedWrites(Protocol):
    """The optional fast paths: each of the executor protocol's write batches in one round trip.

    A coordination store that implements these declares ``batched_writes`` (and so must every
    view its ``scoped`` returns). Each keeps the order of the plain steps it stands for, which is
    what the core does with a store that lacks them (:mod:`wukong.core.batches`).
    """

    def put_and_count(self, items: Mapping[str, Any], counters: Sequence[tuple[str, int]]) -> list[int]:
        """Store ``items``, then :meth:`~CoordinationStore.set_bit_and_count` each ``(counter, bit)``.

        Returns the counts, in order. The order is the protocol's *write before count*: no counter
        may change before every item is stored.
        """
        ...

    def put_count_and_read(
        self,
        items: Mapping[str, Any],
        counter: tuple[str, int],
        complete: int,
        reads: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """As :meth:`put_and_count` with one counter, then maybe more in the same atomic step.

        An executor that completes a counter runs the dependent next; one that does not may have
        nothing left to do. So the store:

        * reads the values under ``reads`` when the count is ``complete`` (``Counted.values``,
          ``None`` for a missing key), or declines (``values=None``: say, values too big to copy),
          and the executor reads them itself;
        * applies ``count_out`` as :meth:`append_and_increment` would when the count is not
          ``complete`` (``Counted.ended``), or declines, and the executor counts out itself.

        Declining both is allowed: the count alone still saves the executor nothing, but keeps one
        method for both forms of a count.
        """
        ...

    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """Append ``record`` to the list ``key``, then apply ``amounts`` as ``increment_many`` does.

        Executors end with it: their task records, then their metrics and their count-out. A failed
        append must raise before any amount is applied (the executor then counts out without its
        records).
        """
        ...


class ObjectStorageBackend(ABC):
    """The base class of every store: an :class:`ObjectStore`, with what the core needs to run one.

    Subclasses declare :attr:`name`, :attr:`Options` and :attr:`capabilities` (an instance may
    narrow its own from its options), take their options as keyword arguments, and implement the
    abstract methods. Instances are used from many threads. A store with atomic counters subclasses
    :class:`StorageBackend` instead.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    capabilities: StorageCapabilities = StorageCapabilities(atomic_counters=False)

    def __init__(self, **options: Any):
        self.options = self.Options(**options)

    def spec(self) -> tuple[str, dict[str, Any]]:
        """Return ``(name, options)`` from which an executor in another process opens this store."""
        return self.name, self.options.model_dump()

    def describe(self) -> str:
        """Return a short description naming the store and its address, for error messages."""
        return f"{self.name} store"

    @abstractmethod
    def check(self) -> None:
        """See :meth:`ObjectStore.check`."""

    @abstractmethod
    def put(self, key: str, value: Any) -> None:
        """See :meth:`ObjectStore.put`."""

    def put_many(self, items: Mapping[str, Any]) -> None:
        """See :meth:`ObjectStore.put_many`; this default puts one at a time."""
        for key, value in items.items():
            self.put(key, value)

    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """See :meth:`ObjectStore.get_many`."""

    def get(self, key: str) -> Any:
        """See :meth:`ObjectStore.get`; this default reads a batch of one."""
        return self.get_many([key])[0]

    @abstractmethod
    def delete_many(self, keys: Iterable[str]) -> None:
        """See :meth:`ObjectStore.delete_many`."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """See :meth:`ObjectStore.list_keys`."""

    def sizes(self, keys: Sequence[str]) -> list[int | None]:
        """See :meth:`ObjectStore.sizes`; this default knows none."""
        return [None] * len(keys)

    def scoped(self, scope: WriteScope) -> ObjectStorageBackend:
        """Return a view of this store whose writes follow ``scope`` (see :class:`WriteScope`).

        The view shares this store's connections; closing it closes nothing. The default ignores
        the scope: a store declares ``fenced_writes`` or ``expiring_keys`` only when its view
        does what they say.
        """
        return self

    def close(self) -> None:
        """See :meth:`ObjectStore.close`; this default has nothing to release."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StorageBackend(ObjectStorageBackend):
    """The base class of a store that can also coordinate: an object and a :class:`CoordinationStore`.

    A store declares ``atomic_counters`` (the default here) and implements the coordination
    methods, each of which raises :class:`~wukong.errors.StorageError` until it does; the client
    checks at start that a declared capability's methods are there
    (:mod:`wukong.plugins.contract`). ``increment_once`` is needed only with
    ``conditional_increments``; the fast paths of :class:`BatchedWrites` only with
    ``batched_writes``.
    """

    capabilities: StorageCapabilities = StorageCapabilities()

    def set_bit_and_count(self, key: str, bit: int) -> int:
        """See :meth:`CoordinationStore.set_bit_and_count`."""
        raise self._no_counters()

    def count_bits(self, key: str) -> int:
        """See :meth:`CoordinationStore.count_bits`."""
        raise self._no_counters()

    def increment(self, key: str, amount: int) -> int:
        """See :meth:`CoordinationStore.increment`."""
        raise self._no_counters()

    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """See :meth:`CoordinationStore.increment_many`; this default increments one at a time."""
        for key, amount in amounts.items():
            self.increment(key, amount)

    def increment_once(
        self, guard: str, amounts: Mapping[str, int], *, while_positive: str | None = None
    ) -> bool:
        """See :meth:`CoordinationStore.increment_once`; this default refuses."""
        raise StorageError(f"{self.describe()} has no conditional increments (needed by speculation)")

    def append(self, key: str, record: bytes) -> None:
        """See :meth:`CoordinationStore.append`."""
        raise self._no_counters()

    def pop_all(self, key: str, timeout: float) -> list[bytes]:
        """See :meth:`CoordinationStore.pop_all`."""
        raise self._no_counters()

    def _no_counters(self) -> StorageError:
        return StorageError(
            f"{self.describe()} has no atomic counters or lists; it can only be a data store "
            "(data_storage), beside a metadata store such as redis or memcached"
        )
