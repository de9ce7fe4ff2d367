"""A job's two storage roles, and how executors in any process open them.

The **metadata store** holds what needs atomic operations or low latency: dependency counters, the
record list, the live-executor count, the failure mark and the schedule pages. The **data store**
holds task outputs, which need throughput. Most set-ups name one store and it plays both roles; a
store without atomic counters (S3) can only be a data store and needs a metadata store beside it.

Write before count across two stores: :meth:`Stores.put_and_count` waits until the data store has
acknowledged every object before it touches a counter in the metadata store. Within the metadata
store, the batches go through :mod:`wukong.core.batches`: the store's one-round-trip form where it
declares ``batched_writes``, else the plain operations in the protocol's order.

Executors and the client write through the job's view of the stores (:meth:`Stores.scoped`): each
key written expires after the job's ``key_ttl``, and no write lands once the job's alive mark is
gone (atomically in stores with ``fenced_writes``, by :mod:`wukong.core.fence` in the others).

Each process keeps the stores it has opened, by spec, so an executor opens them once per worker,
and executor threads in the client's own process use the client's very objects (which is how the
ideal store, a dictionary, reaches them).
"""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from wukong.backends.storage.base import Counted, CountOut, ObjectStorageBackend, StorageBackend, WriteScope
from wukong.core import batches
from wukong.core.backends import create_storage
from wukong.core.fence import CheckedWrites
from wukong.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Stores:
    """The metadata store and the data store of a job; the same object when one store does both.

    The metadata store coordinates (:class:`~wukong.backends.storage.base.CoordinationStore`) and
    keeps objects; the data store need only keep objects. :meth:`validate` says so when the one
    named as the metadata store cannot coordinate.
    """

    metadata: StorageBackend
    data: ObjectStorageBackend

    @classmethod
    def open(
        cls,
        metadata: tuple[str, dict[str, Any]],
        data: tuple[str, dict[str, Any]] | None = None,
    ) -> Stores:
        """Create the stores from ``(name or URL, options)`` pairs; no ``data`` means one store."""
        # The metadata store coordinates if validate() passes (the client calls it at once).
        metadata_store = cast(StorageBackend, create_storage(*metadata))
        if data is None:
            return cls(metadata_store, metadata_store)
        try:
            data_store = create_storage(*data)
        except BaseException:
            metadata_store.close()
            raise
        return cls(metadata_store, data_store)

    @property
    def single(self) -> bool:
        """Whether one store plays both roles."""
        return self.data is self.metadata

    def scoped(self, alive: str | None, ttl_seconds: int | None) -> Stores:
        """The stores as one job writes them: keys that expire, and writes only while ``alive`` is there.

        ``alive`` (a key in the metadata store) ``None``: no check, for the client's own writes.
        The views share these stores' connections.
        """
        metadata = self.metadata.scoped(WriteScope(alive, ttl_seconds))
        if alive is not None and not self.metadata.capabilities.fenced_writes:
            metadata = CheckedWrites(metadata, metadata, alive)
        if self.single:
            return Stores(metadata, metadata)
        # The alive mark is in the metadata store: the data store can only be checked against it.
        data = self.data.scoped(WriteScope(None, ttl_seconds))
        if alive is not None:
            data = CheckedWrites(data, metadata, alive)
        return Stores(metadata, data)

    def through(self, view: Callable[[ObjectStorageBackend], ObjectStorageBackend]) -> Stores:
        """The stores as ``view`` shows each (one view when one store plays both roles)."""
        metadata = view(self.metadata)
        data = metadata if self.single else view(self.data)
        if metadata is self.metadata and data is self.data:
            return self
        return Stores(cast(StorageBackend, metadata), data)

    def validate(self) -> None:
        """Raise :class:`ConfigError` when the metadata store cannot coordinate executors."""
        if not self.metadata.capabilities.atomic_counters:
            hint = (
                "name it as data_storage and give a store with counters (redis, memcached) as storage"
                if self.single
                else "use a store with atomic counters (redis, memcached) as storage"
            )
            raise ConfigError(f"{self.metadata.describe()} has no atomic counters, so it cannot hold "
                              f"a job's counters and records; {hint}")  # fmt: skip

    def check(self) -> None:
        """Raise :class:`~wukong.errors.StorageError` unless every store answers."""
        self.metadata.check()
        if not self.single:
            self.data.check()

    def describe(self) -> str:
        """Name the store, or both stores with their roles."""
        if self.single:
            return self.metadata.describe()
        return f"{self.data.describe()} (data) with {self.metadata.describe()} (metadata)"

    @property
    def shared_across_processes(self) -> bool:
        """Whether executors in other processes can reach both stores."""
        return all(s.capabilities.shared_across_processes for s in (self.metadata, self.data))

    @property
    def objects_stored_as_is(self) -> bool:
        """Whether the data store keeps Python objects, so outputs skip serialization."""
        return self.data.capabilities.stores_objects

    def spec(self) -> bytes:
        """The bytes an invocation carries so an executor can open these stores."""
        data = None if self.single else self.data.spec()
        return pickle.dumps((self.metadata.spec(), data), protocol=5)

    def put_and_count(self, items: Mapping[str, Any], counters: Sequence[tuple[str, int]]) -> list[int]:
        """Store ``items`` in the data store, then set the counters' bits; return the counts."""
        if self.single:
            return batches.put_and_count(self.metadata, items, counters)
        if items:
            self.data.put_many(items)
        return batches.put_and_count(self.metadata, {}, counters)

    def put_count_and_read(
        self,
        items: Mapping[str, Any],
        counter: tuple[str, int],
        complete: int,
        failed_key: str,
        keys: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """:meth:`~wukong.backends.storage.base.BatchedWrites.put_count_and_read` across the two stores.

        The values it returns are the objects under ``keys``, read only if one store plays both
        roles and the job is not marked failed (else read them with :meth:`read_inputs`).
        """
        if not self.single:  # the data first (write before count); the count may carry the count-out
            if items:
                self.data.put_many(items)
            return batches.put_count_and_read(self.metadata, {}, counter, complete, [], count_out)
        reads = [failed_key, *keys] if keys else []
        counted = batches.put_count_and_read(self.metadata, items, counter, complete, reads, count_out)
        if counted.values is None or counted.values[0] is not None:
            return counted._replace(values=None)
        return counted._replace(values=counted.values[1:])

    def read_inputs(self, failed_key: str, keys: Sequence[str]) -> tuple[bool, list[Any]]:
        """Return whether the job is marked failed, and the objects under ``keys``.

        With one store the mark rides along with the objects in a single batch read.
        """
        if self.single:
            failed, *values = self.metadata.get_many([failed_key, *keys])
            return failed is not None, values
        if self.metadata.get(failed_key) is not None:
            return True, []
        return False, self.data.get_many(keys)

    def delete(self, metadata_keys: Iterable[str], data_keys: Iterable[str]) -> None:
        """Remove keys from their stores (each store takes them in batches, as they come)."""
        if self.single:
            self.metadata.delete_many(itertools.chain(metadata_keys, data_keys))
            return
        self.data.delete_many(data_keys)
        self.metadata.delete_many(metadata_keys)

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` in either store (for tests and clean-up tools)."""
        keys = set(self.metadata.list_keys(prefix))
        if not self.single:
            keys.update(self.data.list_keys(prefix))
        return sorted(keys)

    def close(self) -> None:
        """Close both stores."""
        try:
            if not self.single:
                self.data.close()
        finally:
            self.metadata.close()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_lock = threading.Lock()
_open: dict[bytes, Stores] = {}


def share(stores: Stores) -> bytes:
    """Let executors in this process use ``stores`` themselves; return their spec."""
    spec = stores.spec()
    with _lock:
        _open[spec] = stores
    return spec


def unshare(stores: Stores) -> None:
    """Stop handing ``stores`` to executors in this process."""
    with _lock:
        for spec, shared in list(_open.items()):
            if shared is stores:
                del _open[spec]


def open_stores(spec: bytes) -> Stores:
    """Return this process's stores for ``spec``, opening them on first use."""
    stores = _open.get(spec)
    if stores is not None:
        return stores
    with _lock:
        stores = _open.get(spec)
        if stores is None:
            metadata, data = pickle.loads(spec)
            stores = _open[spec] = Stores.open(metadata, data)
        return stores
