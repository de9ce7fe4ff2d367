"""The executor protocol's write batches, on any coordination store: its fast path, or the plain steps.

Executors write in a few fixed batches: an output, then the counters it completes; with the last
count, maybe a read of the dependent's other inputs or the executor's count-out; at the end, the
executor's task records, then its metrics and count-out. A store that declares ``batched_writes``
sends each batch in one round trip (:class:`~wukong.backends.storage.base.BatchedWrites`). For any
other, these functions take the plain operations one at a time, in the order the protocol needs:

* *write before count*: every object is stored before any counter changes;
* *append before increments*: a failed append raises before any amount is applied, so the
  executor can still count out without its records.

This is the one place those fallbacks live: :class:`~wukong.core.stores.Stores`, the fence
(:mod:`wukong.core.fence`) and the executor's count-out (:mod:`wukong.core.attempts`) all go
through it. The core decides by the declared capability, never by ``hasattr``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from wukong.backends.storage.base import BatchedWrites, Counted, CountOut, StorageBackend


def fast_paths(store: StorageBackend) -> BatchedWrites | None:
    """``store`` as :class:`BatchedWrites` if it declares ``batched_writes``, else ``None``."""
    return cast(BatchedWrites, store) if store.capabilities.batched_writes else None


def put_and_count(
    store: StorageBackend, items: Mapping[str, Any], counters: Sequence[tuple[str, int]]
) -> list[int]:
    """Store ``items``, then set each ``(counter, bit)``; return the counts (write before count)."""
    fast = fast_paths(store)
    if fast is not None:
        return fast.put_and_count(items, counters)
    if items:
        store.put_many(items)
    return [store.set_bit_and_count(key, bit) for key, bit in counters]


def put_count_and_read(
    store: StorageBackend,
    items: Mapping[str, Any],
    counter: tuple[str, int],
    complete: int,
    reads: Sequence[str],
    count_out: CountOut | None = None,
) -> Counted:
    """:meth:`BatchedWrites.put_count_and_read`; without the fast path, the count alone (both declined)."""
    fast = fast_paths(store)
    if fast is not None:
        return fast.put_count_and_read(items, counter, complete, reads, count_out)
    return Counted(put_and_count(store, items, [counter])[0], None, False)


def append_and_increment(store: StorageBackend, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
    """Append ``record`` to the list ``key``, then apply ``amounts`` in order (append before increments)."""
    fast = fast_paths(store)
    if fast is not None:
        fast.append_and_increment(key, record, amounts)
        return
    store.append(key, record)  # raises before any amount is applied
    store.increment_many(amounts)
