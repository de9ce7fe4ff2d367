"""The executor protocol's write batches: a store's fast path when declared, else the plain steps in order."""

from __future__ import annotations

from typing import Any

import pytest

from wukong.backends.storage.base import Counted, CountOut, StorageBackend, StorageCapabilities
from wukong.core import batches
from wukong.errors import StorageError


class _Recorder(StorageBackend):
    """A coordination store without fast paths that records each operation."""

    name = "recorder"

    def __init__(self, refuse_appends: bool = False):
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []
        self.refuse_appends = refuse_appends

    def check(self) -> None: ...
    def get_many(self, keys): return [None] * len(keys)  # fmt: skip

    def delete_many(self, keys) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: return []  # fmt: skip

    def put(self, key: str, value: Any) -> None:
        self.calls.append(("put", key))

    def set_bit_and_count(self, key: str, bit: int) -> int:
        self.calls.append(("count", key, bit))
        return bit

    def increment(self, key: str, amount: int) -> int:
        self.calls.append(("increment", key, amount))
        return amount

    def append(self, key: str, record: bytes) -> None:
        if self.refuse_appends:
            raise StorageError("the list is full")
        self.calls.append(("append", key))


class _Batched(_Recorder):
    """Declares the fast paths: the core must use them and nothing else."""

    capabilities = StorageCapabilities(batched_writes=True)

    def put_and_count(self, items, counters) -> list[int]:
        self.calls.append(("put_and_count", len(items), len(counters)))
        return [0] * len(counters)

    def put_count_and_read(self, items, counter, complete, reads, count_out=None) -> Counted:
        self.calls.append(("put_count_and_read", counter))
        return Counted(complete, ["value"], False)

    def append_and_increment(self, key, record, amounts) -> None:
        self.calls.append(("append_and_increment", key))


def test_without_fast_paths_every_write_comes_before_any_count():
    store = _Recorder()
    assert batches.put_and_count(store, {"a": b"1", "b": b"2"}, [("c", 3), ("d", 4)]) == [3, 4]
    assert store.calls == [("put", "a"), ("put", "b"), ("count", "c", 3), ("count", "d", 4)]


def test_without_fast_paths_a_count_declines_to_read_or_count_out():
    store = _Recorder()
    out = CountOut("records", b"r", {"live": -1})
    assert batches.put_count_and_read(store, {"a": b"1"}, ("c", 2), 2, ["x"], out) == (2, None, False)
    assert store.calls == [("put", "a"), ("count", "c", 2)]


def test_without_fast_paths_the_append_comes_first_and_a_failed_one_counts_nothing():
    store = _Recorder()
    batches.append_and_increment(store, "records", b"r", {"m": 2, "live": -1})
    assert store.calls == [("append", "records"), ("increment", "m", 2), ("increment", "live", -1)]
    full = _Recorder(refuse_appends=True)
    with pytest.raises(StorageError, match="full"):
        batches.append_and_increment(full, "records", b"r", {"m": 2, "live": -1})
    assert full.calls == []


def test_a_store_that_declares_fast_paths_gets_them():
    store = _Batched()
    assert batches.put_and_count(store, {"a": b"1"}, [("c", 1)]) == [0]
    assert batches.put_count_and_read(store, {}, ("c", 2), 2, ["x"]) == (2, ["value"], False)
    batches.append_and_increment(store, "records", b"r", {"live": -1})
    assert store.calls == [
        ("put_and_count", 1, 1),
        ("put_count_and_read", ("c", 2)),
        ("append_and_increment", "records"),
    ]
