"""No write after the end: writes that check, after they land, that their job is still alive.

The client ends a job by removing its alive mark, then every other key of the job (see
:mod:`wukong.core.keys`). A store with ``fenced_writes`` refuses an executor's write made after
that inside the store itself. For the others (memcached, Redis Cluster, sharded Redis, S3 beside a
metadata store, the ideal store) :class:`CheckedWrites` keeps the same promise from outside: every
write is followed by a read of the alive mark, and a writer that finds it gone removes what it
wrote and raises :class:`~wukong.errors.JobEndedError`.

Why this is enough without atomicity: the client removes the mark *before* the other keys. A write
that landed before the mark went is removed by the client's clean-up; a write that landed after it
is seen by its own check, which comes later still, and removed by its writer. Only a writer killed
between its write and its check leaves a key, and that key expires with the job's ``key_ttl``
where the store can expire keys (``wukong gc`` removes it where it cannot).

The price is one read of the mark per write batch: executors batch their writes (an output with
its counters, the count-out with the metrics), so it is one round trip per task or less. That holds
for a store without fast paths too: the view offers the batches itself (it declares
``batched_writes`` whenever its store coordinates), takes them as the store can
(:mod:`wukong.core.batches`), and checks once after each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wukong.backends.storage.base import Counted, CountOut, ObjectStorageBackend
from wukong.backends.storage.view import StoreView
from wukong.core import batches
from wukong.errors import JobEndedError


class CheckedWrites(StoreView):
    """A view of ``store`` whose every write is checked against ``alive`` in ``marks`` afterwards.

    ``marks`` is the job's metadata store (``store`` itself, or the store beside a data store).
    Reads go straight to ``store``; closing the view closes nothing. The coordination methods are
    there for a coordinating ``store`` only; for one that coordinates the view also has the batched
    writes, whether ``store`` has them or not, so each batch costs one check.
    """

    def __init__(self, store: ObjectStorageBackend, marks: ObjectStorageBackend, alive: str):
        super().__init__(store)
        self.marks, self.alive = marks, alive
        self.capabilities = dataclasses.replace(
            store.capabilities, batched_writes=store.capabilities.atomic_counters
        )

    def _check(self, written: Iterable[str]) -> None:
        """Raise :class:`JobEndedError`, after removing ``written``, if the job has ended."""
        written = list(written)
        if written and self.marks.get(self.alive) is None:
            self.store.delete_many(written)
            raise JobEndedError(f"{self.store.describe()}: the job of {self.alive} has ended")

    def put(self, key: str, value: Any) -> None:
        """Write, then check."""
        self.store.put(key, value)
        self._check([key])

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Write, then check."""
        if items:
            self.store.put_many(items)
            self._check(items)

    def put_and_count(self, items: Mapping[str, Any], counters: Sequence[tuple[str, int]]) -> list[int]:
        """Write and count (in one batch where the store can), then check once."""
        counts = batches.put_and_count(self.store, items, counters)
        self._check([*items, *(key for key, _ in counters)])
        return counts

    def put_count_and_read(
        self,
        items: Mapping[str, Any],
        counter: tuple[str, int],
        complete: int,
        reads: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """Write and count, maybe read or count out (where the store can), then check once."""
        counted = batches.put_count_and_read(self.store, items, counter, complete, reads, count_out)
        written = [*items, counter[0]]
        if counted.ended and count_out is not None:
            written += [count_out.records_key, *count_out.amounts]
        self._check(written)
        return counted

    def set_bit_and_count(self, key: str, bit: int) -> int:
        """Count, then check."""
        count = self.store.set_bit_and_count(key, bit)
        self._check([key])
        return count

    def increment(self, key: str, amount: int) -> int:
        """Add, then check (a read, ``amount == 0``, creates nothing and is not checked)."""
        value = self.store.increment(key, amount)
        if amount:
            self._check([key])
        return value

    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """Add, then check."""
        self.store.increment_many(amounts)
        self._check(amounts)

    def increment_once(
        self, guard: str, amounts: Mapping[str, int], *, while_positive: str | None = None
    ) -> bool:
        """Add once, then check."""
        applied = self.store.increment_once(guard, amounts, while_positive=while_positive)
        self._check([guard, *amounts])
        return applied

    def append(self, key: str, record: bytes) -> None:
        """Append, then check."""
        self.store.append(key, record)
        self._check([key])

    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """Append and add (in one batch where the store can), then check once."""
        batches.append_and_increment(self.store, key, record, amounts)
        self._check([key, *amounts])
