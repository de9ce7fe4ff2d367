"""A store as an executor with limited bandwidth reaches it: each transfer takes its bytes' time.

The simulated Lambda models each executor's throughput to storage (``bandwidth_mb_per_second``).
Its executor context hands executors their stores through :class:`LimitedBandwidth`, which sleeps in
the calling executor's thread as long as moving each write's and read's objects takes at that rate;
so the executor itself knows nothing of the model. Only objects count (outputs, schedule pages,
persisted values); counters and records are a few bytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wukong.backends.storage.base import Counted, CountOut, ObjectStorageBackend
from wukong.backends.storage.view import StoreView
from wukong.core import codec


def _size(value: Any) -> int:
    """The bytes an object takes on the wire: its length, or its pickled size for a kept object."""
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return codec.measure_kept(value)


class LimitedBandwidth(StoreView):
    """``store``, with every object moved to or from it taking ``len / bytes_per_second`` seconds."""

    def __init__(self, store: ObjectStorageBackend, bytes_per_second: float):
        super().__init__(store)
        self.bytes_per_second = bytes_per_second

    def _move(self, values: Iterable[Any]) -> None:
        nbytes = sum(_size(value) for value in values if value is not None)
        if nbytes:
            time.sleep(nbytes / self.bytes_per_second)

    def put(self, key: str, value: Any) -> None:
        """Send, then write."""
        self._move([value])
        self.store.put(key, value)

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Send, then write."""
        self._move(items.values())
        self.store.put_many(items)

    def get(self, key: str) -> Any:
        """Read, then receive."""
        value = self.store.get(key)
        self._move([value])
        return value

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """Read, then receive."""
        values = self.store.get_many(keys)
        self._move(values)
        return values

    def put_and_count(self, items: Mapping[str, Any], counters: Sequence[tuple[str, int]]) -> list[int]:
        """Send, then write and count."""
        self._move(items.values())
        return self.store.put_and_count(items, counters)

    def put_count_and_read(
        self,
        items: Mapping[str, Any],
        counter: tuple[str, int],
        complete: int,
        reads: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """Send, write and count, then receive what the count read."""
        self._move(items.values())
        counted = self.store.put_count_and_read(items, counter, complete, reads, count_out)
        self._move(counted.values or ())
        return counted
