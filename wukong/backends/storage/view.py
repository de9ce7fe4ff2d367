"""A store seen through a wrapper: every call goes to the wrapped store unless the wrapper says otherwise.

Wrappers change what a store does without being one: the fence (:mod:`wukong.core.fence`) checks
each write against the job's alive mark; the simulated Lambda (:mod:`wukong.backends.compute.bandwidth`)
makes each transfer take the time its bandwidth model says. Each subclasses :class:`StoreView` and
overrides only the methods it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wukong.backends.storage.base import Counted, CountOut, ObjectStorageBackend, StorageBackend, WriteScope


class StoreView(StorageBackend):
    """``store`` with its name, options, capabilities, spec and description; closing it closes nothing.

    The coordination methods and the batched writes are there only where ``store`` has them (its
    capabilities say so, and the view has the same).
    """

    def __init__(self, store: ObjectStorageBackend):  # no options of its own
        self.store: Any = store  # a StorageBackend when it coordinates
        self.name = store.name  # type: ignore[misc]
        self.options = store.options
        self.capabilities = store.capabilities

    def check(self) -> None:
        """The store's own check."""
        self.store.check()

    def describe(self) -> str:
        """The store's own description."""
        return self.store.describe()

    def spec(self) -> tuple[str, dict[str, Any]]:
        """The store's own spec."""
        return self.store.spec()

    def scoped(self, scope: WriteScope) -> ObjectStorageBackend:
        """The store's own scoped view: a view is made of the store as the job writes it."""
        raise TypeError(f"scope {self.describe()} before wrapping it in a {type(self).__name__}")

    def put(self, key: str, value: Any) -> None:
        """Write to the store."""
        self.store.put(key, value)

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Write to the store."""
        self.store.put_many(items)

    def get(self, key: str) -> Any:
        """Read from the store."""
        return self.store.get(key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """Read from the store."""
        return self.store.get_many(keys)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove from the store."""
        self.store.delete_many(keys)

    def list_keys(self, prefix: str) -> list[str]:
        """List from the store."""
        return self.store.list_keys(prefix)

    def sizes(self, keys: Sequence[str]) -> list[int | None]:
        """Sizes from the store."""
        return self.store.sizes(keys)

    def set_bit_and_count(self, key: str, bit: int) -> int:
        """Count in the store."""
        return self.store.set_bit_and_count(key, bit)

    def count_bits(self, key: str) -> int:
        """Read from the store."""
        return self.store.count_bits(key)

    def increment(self, key: str, amount: int) -> int:
        """Add in the store."""
        return self.store.increment(key, amount)

    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """Add in the store."""
        self.store.increment_many(amounts)

    def increment_once(
        self, guard: str, amounts: Mapping[str, int], *, while_positive: str | None = None
    ) -> bool:
        """Add once in the store."""
        return self.store.increment_once(guard, amounts, while_positive=while_positive)

    def append(self, key: str, record: bytes) -> None:
        """Append in the store."""
        self.store.append(key, record)

    def pop_all(self, key: str, timeout: float) -> list[bytes]:
        """Take from the store."""
        return self.store.pop_all(key, timeout)

    def put_and_count(self, items: Mapping[str, Any], counters: Sequence[tuple[str, int]]) -> list[int]:
        """The store's batch (called only where it declares ``batched_writes``)."""
        return self.store.put_and_count(items, counters)

    def put_count_and_read(
        self,
        items: Mapping[str, Any],
        counter: tuple[str, int],
        complete: int,
        reads: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """The store's batch (called only where it declares ``batched_writes``)."""
        return self.store.put_count_and_read(items, counter, complete, reads, count_out)

    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """The store's batch (called only where it declares ``batched_writes``)."""
        self.store.append_and_increment(key, record, amounts)

    def close(self) -> None:
        """Nothing: the store this view wraps is its owner's to close."""
