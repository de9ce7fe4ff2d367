"""The ideal store: a dictionary in the client's process, for "what if storage were free" experiments.

Values are kept as Python objects (no serialization, no copy), counters and lists behind one lock.
It only serves executors in the same process, so it pairs with ``compute="local"`` in threads mode.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wukong.backends.options import BackendOptions
from wukong.backends.storage.base import StorageBackend, StorageCapabilities
from wukong.errors import StorageError


class IdealOptions(BackendOptions):
    """Options of the ``ideal`` store.

    Attributes:
        instance: identifies one in-memory store within the process; set by the store itself so
            executor threads find the very dictionary the client created.

    """

    instance: str = ""


class IdealStorage(StorageBackend):
    """A zero-cost in-memory store."""

    name = "ideal"
    Options = IdealOptions
    capabilities = StorageCapabilities(
        shared_across_processes=False, stores_objects=True, conditional_increments=True
    )

    def __init__(self, **options: Any):
        if options.get("instance"):
            # Executor threads reuse the client's live instance (see wukong.core.stores); reaching
            # this line means an executor in another process tried to open it.
            raise StorageError(
                "the ideal store lives in the client's process only; use it with "
                "compute='local' and compute_options={'mode': 'threads'}"
            )
        super().__init__(instance=uuid.uuid4().hex, **options)
        self._data: dict[str, Any] = {}
        self._bits: dict[str, dict[int, int]] = defaultdict(dict)  # bit -> count when set
        self._lists: dict[str, list[bytes]] = defaultdict(list)
        self._changed = threading.Condition()
        self._closed = False

    def describe(self) -> str:
        """Name the store."""
        return f"ideal in-memory store {self.options.instance[:8]}"

    def check(self) -> None:
        """Fail once the store is closed."""
        if self._closed:
            raise StorageError(f"{self.describe()} is closed")

    def put(self, key: str, value: Any) -> None:
        """Keep the object itself."""
        self._data[key] = value

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Keep the objects."""
        self._data.update(items)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """Return the objects themselves."""
        data = self._data
        return [data.get(key) for key in keys]

    def delete_many(self, keys: Iterable[str]) -> None:
        """Forget the keys."""
        with self._changed:
            for key in keys:
                self._data.pop(key, None)
                self._bits.pop(key, None)
                self._lists.pop(key, None)

    def set_bit_and_count(self, key: str, bit: int) -> int:
        """Add ``bit`` to the counter; return the count its first setting made."""
        with self._changed:
            bits = self._bits[key]
            return bits.setdefault(bit, len(bits) + 1)

    def count_bits(self, key: str) -> int:
        """How many bits the counter has."""
        with self._changed:
            bits = self._bits.get(key)
            return len(bits) if bits else 0

    def increment(self, key: str, amount: int) -> int:
        """Add to the integer under ``key``."""
        with self._changed:
            value = self._data.get(key, 0) + amount
            if amount:
                self._data[key] = value
            return value

    def increment_once(
        self, guard: str, amounts: Mapping[str, int], *, while_positive: str | None = None
    ) -> bool:
        """Under the lock: set the guard and add the amounts, unless the guard is there."""
        with self._changed:
            if guard in self._data or (while_positive is not None and self._data.get(while_positive, 0) <= 0):
                return False
            self._data[guard] = 1
            for key, amount in amounts.items():
                self._data[key] = self._data.get(key, 0) + amount
            return True

    def append(self, key: str, record: bytes) -> None:
        """Append and wake the waiting client."""
        with self._changed:
            self._lists[key].append(record)
            self._changed.notify_all()

    def pop_all(self, key: str, timeout: float) -> list[bytes]:
        """Wait up to ``timeout`` for a record, then take them all."""
        with self._changed:
            self._changed.wait_for(lambda: self._lists.get(key), timeout=timeout)
            return self._lists.pop(key, [])

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, whatever its kind."""
        with self._changed:
            keys = set(self._data) | set(self._bits) | set(self._lists)
        return sorted(k for k in keys if k.startswith(prefix))

    def close(self) -> None:
        """Drop everything."""
        self._closed = True
        with self._changed:
            self._data.clear()
            self._bits.clear()
            self._lists.clear()
