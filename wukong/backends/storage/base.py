"""The storage interface every store implements, built-in or third-party.

A store holds three kinds of things for a job, all under the job's key prefix:

* objects (task outputs, schedule pages), written once and read many times: :meth:`put`,
  :meth:`get_many`;
* dependency counters, one bit per dependency: :meth:`set_bit_and_count` sets a bit and returns how
  many bits are set, atomically; setting a bit again returns the count its first setting saw, so a
  retried executor neither counts twice nor takes another executor's turn;
* the job's record list, where executors append result and error records and the client waits:
  :meth:`append`, :meth:`pop_all`; and a plain counter of live executors, :meth:`increment`.

A store without atomic counters (``capabilities.atomic_counters=False``, like S3) implements only
the object methods and serves as a job's *data store*, beside a metadata store that has them.

Executors and the client write through a view of the store scoped to their job (:meth:`scoped`,
with a :class:`WriteScope`): the view gives every key it writes a bounded lifetime and, where the
store can, refuses every write once the job's alive mark is gone. Both are optional capabilities;
the core makes up for a store that lacks the second (see :mod:`wukong.core.fence`).

Every method raises :class:`wukong.errors.StorageError`, naming the store, when the store fails.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, ParamSpec, Self, TypeVar

from wukong.backends.options import BackendOptions
from wukong.errors import StorageError

P = ParamSpec("P")
R = TypeVar("R")


def translate_errors(
    *client_errors: type[BaseException],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator for store methods: ``client_errors`` become a :class:`StorageError`.

    The message names the store (its :meth:`StorageBackend.describe`), the method and the client's
    error, so a user sees which store and address failed, and how.
    """

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except client_errors as error:
                store: StorageBackend = args[0]  # type: ignore[assignment]
                raise StorageError(
                    f"{store.describe()} failed in {method.__name__}: {type(error).__name__}: {error}"
                ) from error

        return wrapper

    return decorate


@dataclass(frozen=True)
class StorageCapabilities:
    """What a store can do; the core checks these, never ``hasattr``.

    Attributes:
        atomic_counters: :meth:`StorageBackend.set_bit_and_count` and ``increment`` are atomic
            across processes (a store without them can only be a data store).
        shared_across_processes: executors in other processes (or machines) can reach it; the
            ideal store lives in one process and needs the threads mode.
        stores_objects: values are kept as Python objects, not bytes, so executors skip
            serialization (the ideal store's zero-copy access).
        max_object_bytes: the largest object the store accepts, or ``None`` for no limit.
        conditional_increments: :meth:`StorageBackend.increment_once` is atomic (speculative
            execution needs it: two attempts of one invocation must count once between them).
        fenced_writes: a view from :meth:`StorageBackend.scoped` with an ``alive`` key raises
            :class:`~wukong.errors.JobEndedError` for every write made once that key is gone, and
            leaves nothing of it in the store, at no extra round trip.
        expiring_keys: a view from :meth:`StorageBackend.scoped` gives every key it writes the
            scope's lifetime.
        evicts: the store may drop a key before it is deleted or expires (memcached, when it runs
            out of memory), so it cannot keep a persisted value for later jobs.

    """

    atomic_counters: bool = True
    shared_across_processes: bool = True
    stores_objects: bool = False
    max_object_bytes: int | None = None
    conditional_increments: bool = False
    fenced_writes: bool = False
    expiring_keys: bool = False
    evicts: bool = False


@dataclass(frozen=True)
class WriteScope:
    """What a view from :meth:`StorageBackend.scoped` does to its writes.

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
    """An executor's last batch, as :meth:`StorageBackend.append_and_increment` takes it.

    Its task records (appended to ``records_key``, unless ``None``), then ``amounts``: its metrics
    and its count-out.
    """

    records_key: str
    records: bytes | None
    amounts: Mapping[str, int]


class Counted(NamedTuple):
    """What :meth:`StorageBackend.put_count_and_read` did.

    The count; the values it read (``None``: it read none); whether it applied the count-out.
    """

    count: int
    values: list[Any] | None
    ended: bool


class StorageBackend(ABC):
    """A store for a job's objects, counters and records.

    Subclasses declare :attr:`name`, :attr:`Options` and :attr:`capabilities` (an instance may
    narrow its own from its options), take their options as keyword arguments, and implement the
    abstract methods. Instances are used from many threads.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    capabilities: StorageCapabilities = StorageCapabilities()

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
        """Raise :class:`~wukong.errors.StorageError` unless the store answers."""

    @abstractmethod
    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (bytes, or any object when ``stores_objects``) under ``key``.

        The core writes each object key once (a retried executor may write the same key again, with
        an equal value), so a store may assume no object changes size under a reader.
        """

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Store several objects; backends with a batch write override this."""
        for key, value in items.items():
            self.put(key, value)

    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """Return the values under ``keys``, in order, with ``None`` for a missing key."""

    def get(self, key: str) -> Any:
        """Return the value under ``key``, or ``None``."""
        return self.get_many([key])[0]

    @abstractmethod
    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove ``keys`` (objects, counters or lists); missing keys are ignored."""

    def set_bit_and_count(self, key: str, bit: int) -> int:
        """Set bit ``bit`` of the counter ``key`` and return how many of its bits are set, atomically.

        Setting a bit again changes nothing and returns the count its *first* setting returned. So
        the executor that completes a counter is decided once: a retried executor sees the answer
        its crashed attempt saw, and replays the same decisions (it cannot complete a counter early,
        nor believe it completed one that another executor did). Required when
        ``capabilities.atomic_counters``, like the record and counter methods below.
        """
        raise self._no_counters()

    def count_bits(self, key: str) -> int:
        """Return how many bits of the counter ``key`` are set (0 when missing), changing nothing.

        Delayed I/O polls a dependent's counter with it.
        """
        raise self._no_counters()

    def put_and_count(self, items: Mapping[str, Any], counters: Sequence[tuple[str, int]]) -> list[int]:
        """Store ``items``, then set bit ``bit`` of each ``(counter, bit)`` and return the counts.

        The order is the protocol's *write before count*: no counter may change before every item
        is stored. This default takes one step at a time; a store that can send the whole batch in
        one round trip, in order, overrides it.
        """
        if items:
            self.put_many(items)
        return [self.set_bit_and_count(key, bit) for key, bit in counters]

    def put_count_and_read(
        self,
        items: Mapping[str, Any],
        counter: tuple[str, int],
        complete: int,
        reads: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """As :meth:`put_and_count` with one counter, then maybe more in the same round trip.

        An executor that completes a counter runs the dependent next; one that does not may have
        nothing left to do. So a store that can, in the same atomic step:

        * reads the values under ``reads`` when the count is ``complete`` (``Counted.values``,
          ``None`` for a missing key), or declines (``values=None``: say, values too big to copy),
          and the executor reads them itself;
        * applies ``count_out`` as :meth:`append_and_increment` would when the count is not
          ``complete`` (``Counted.ended``), or declines, and the executor counts out itself.

        This default declines both: overriding it is optional, and saves executors round trips.
        """
        return Counted(self.put_and_count(items, [counter])[0], None, False)

    def increment(self, key: str, amount: int) -> int:
        """Add ``amount`` to the integer under ``key`` (missing: 0) and return the new value.

        ``amount`` may be negative; the core never takes a counter below zero, and a store may
        stop at zero. ``increment(key, 0)`` reads a counter without creating it.
        """
        raise self._no_counters()

    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """Apply several :meth:`increment` calls, in order; stores that batch them override this."""
        for key, amount in amounts.items():
            self.increment(key, amount)

    def increment_once(
        self, guard: str, amounts: Mapping[str, int], *, while_positive: str | None = None
    ) -> bool:
        """Set ``guard`` and apply ``amounts``, atomically, unless ``guard`` is set already.

        With ``while_positive``, also only if the counter under that key is above zero at that
        moment (a backup joins a job's live count only while the job is alive: once the client has
        read zero there, it removes the job's keys). Returns whether this call applied the
        amounts. Required when ``capabilities.conditional_increments``: of two attempts of one
        invocation running at once (a speculative backup), exactly one counts each thing in or out.
        """
        raise StorageError(f"{self.describe()} has no conditional increments (needed by speculation)")

    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """Append ``record`` to the list ``key``, then apply ``amounts`` as :meth:`increment_many` does.

        Executors end with it: their task records, then their metrics and their count-out. A failed
        append must raise before any amount is applied (the executor then counts out without its
        records). This default takes two steps; a store that can send both in one round trip
        overrides it.
        """
        self.append(key, record)
        self.increment_many(amounts)

    def append(self, key: str, record: bytes) -> None:
        """Append ``record`` to the list ``key``."""
        raise self._no_counters()

    def pop_all(self, key: str, timeout: float) -> list[bytes]:
        """Remove and return every record of list ``key``, oldest first.

        Waits up to ``timeout`` seconds for the first one; returns ``[]`` when none arrived.
        """
        raise self._no_counters()

    def _no_counters(self) -> StorageError:
        return StorageError(
            f"{self.describe()} has no atomic counters or lists; it can only be a data store "
            "(data_storage), beside a metadata store such as redis or memcached"
        )

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Return every key that starts with ``prefix``, in any order (for tests and clean-up tools)."""

    def sizes(self, keys: Sequence[str]) -> list[int | None]:
        """Return roughly how many bytes each key takes (``None``: unknown), for ``wukong gc``."""
        return [None] * len(keys)

    def scoped(self, scope: WriteScope) -> StorageBackend:
        """Return a view of this store whose writes follow ``scope`` (see :class:`WriteScope`).

        The view shares this store's connections; closing it closes nothing. The default ignores
        the scope: a store declares ``fenced_writes`` or ``expiring_keys`` only when its view
        does what they say.
        """
        return self

    def close(self) -> None:
        """Release connections (and, for an embedded store, stop its server)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
