"""A conformance suite every store runs as-is, built-in or third-party.

Subclass :class:`StorageConformance` in a test module and give it a ``storage_config`` fixture that
returns ``(name or URL, options)`` for a store reachable from the tests (start the real server in a
fixture). A data-only store (no atomic counters, like S3) subclasses :class:`DataStoreConformance`
instead, and overrides ``job_settings`` to name a metadata store for the end-to-end job tests::

    class TestMyStore(StorageConformance):
        @pytest.fixture
        def storage_config(self, my_server):
            return "mystore", {"url": my_server.url}

The suite checks that a store has the methods of what it declares (:class:`ObjectStore`, and
:class:`CoordinationStore` and :class:`BatchedWrites` when it declares ``atomic_counters`` and
``batched_writes``), objects (0 bytes to 256 MB, batches, missing keys, deletes), key prefixes kept
apart, counters under concurrent updates from several processes (no lost count, no double count,
retries idempotent), the record list, the executor protocol's write batches (through the store's
fast paths or the core's fallbacks, as the core would send them), that a job, finished or failed,
leaves no key behind, that no write through a job's view lands once the job's alive mark is gone
(however the writes race the end), and that keys expire on a store that declares ``expiring_keys``.
:class:`ObjectConformance` holds the object-store checks, which every store passes;
:class:`StorageConformance` adds the coordination checks.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from wukong.backends.storage.base import (
    BatchedWrites,
    CoordinationStore,
    CountOut,
    ObjectStorageBackend,
    ObjectStore,
    StorageBackend,
    WriteScope,
)
from wukong.core import batches
from wukong.core.backends import create_storage
from wukong.core.stores import Stores
from wukong.errors import JobEndedError, StorageError

StorageConfig = tuple[str, dict[str, Any]]

_WORKERS = 4
_MiB = 1024 * 1024


@contextmanager
def _opened(target: StorageConfig | StorageBackend) -> Iterator[StorageBackend]:
    """A worker's store: its own connection in a worker process, the test's store in a thread."""
    if isinstance(target, StorageBackend):
        yield target
        return
    store = create_storage(*target)
    try:
        yield store
    finally:
        store.close()


def _set_bits(target: StorageConfig | StorageBackend, counter: str, bits: list[int]) -> list[int]:
    """Set each bit twice (a retry), as one worker; return the counts seen."""
    with _opened(target) as store:
        return [store.set_bit_and_count(counter, bit) for bit in bits for _ in range(2)]


def _race(target: StorageConfig | StorageBackend, guard: str, counter: str) -> bool:
    with _opened(target) as store:
        return store.increment_once(guard, {counter: 1})


def _increment(target: StorageConfig | StorageBackend, counter: str, times: int) -> None:
    with _opened(target) as store:
        for _ in range(times):
            store.increment(counter, 1)


def _append(target: StorageConfig | StorageBackend, key: str, worker: int, records: int) -> None:
    with _opened(target) as store:
        for index in range(records):
            store.append(key, f"{worker}:{index}".encode())


def _blob(size: int) -> bytes:
    """``size`` bytes that are not all alike, so a misplaced chunk shows."""
    pattern = os.urandom(min(size, 4099))
    return (pattern * (size // max(len(pattern), 1) + 1))[:size]


# Every kind of write a job's view makes, as (name, write(view, prefix)).
_JOB_WRITES: list[tuple[str, Any]] = [
    ("put", lambda view, prefix: view.put(prefix + "o/1", b"x")),
    ("put_many", lambda view, prefix: view.put_many({prefix + "o/2": b"x", prefix + "o/3": b"y"})),
    (
        "put_and_count",
        lambda view, prefix: batches.put_and_count(view, {prefix + "o/4": b"x"}, [(prefix + "c/4", 3)]),
    ),
    ("set_bit_and_count", lambda view, prefix: view.set_bit_and_count(prefix + "c/5", 7)),
    (
        "put_count_and_read",
        lambda view, prefix: batches.put_count_and_read(
            view, {prefix + "o/6": b"x"}, (prefix + "c/6", 2), 1, [prefix + "o/6"]
        ),
    ),
    ("increment", lambda view, prefix: view.increment(prefix + "live", 1)),
    ("increment_many", lambda view, prefix: view.increment_many({prefix + "m/a": 2, prefix + "live": 1})),
    ("append", lambda view, prefix: view.append(prefix + "records", b"r")),
    (
        "append_and_increment",
        lambda view, prefix: batches.append_and_increment(view, prefix + "tasks", b"t", {prefix + "m/b": 1}),
    ),
]
_CONDITIONAL_WRITE = (
    "increment_once",
    lambda view, prefix: view.increment_once(prefix + "w/1", {prefix + "n": 1}),
)


def _job_writes(store: StorageBackend) -> list[tuple[str, Any]]:
    if store.capabilities.conditional_increments:
        return [*_JOB_WRITES, _CONDITIONAL_WRITE]
    return _JOB_WRITES


def _pass(value: Any) -> Any:
    return value


def _raise(value: Any) -> Any:
    raise ValueError(f"conformance task failed on purpose with {value!r}")


class ObjectConformance:
    """The object-store checks every store passes: objects, key prefixes, jobs that leave nothing behind."""

    @pytest.fixture
    def storage_config(self) -> StorageConfig:
        """``(name or URL, options)`` of the store under test; subclasses must override it."""
        raise NotImplementedError("a conformance subclass must define the storage_config fixture")

    @pytest.fixture
    def store(self, storage_config: StorageConfig) -> Iterator[StorageBackend]:
        """The store, opened for one test and closed after it."""
        store = create_storage(*storage_config)
        try:
            yield store
        finally:
            store.close()

    @pytest.fixture
    def prefix(self, store: StorageBackend) -> Iterator[str]:
        """A key prefix of this test's own; everything under it is removed afterwards."""
        prefix = f"wukong-conformance/{uuid.uuid4().hex[:12]}/"
        yield prefix
        store.delete_many(store.list_keys(prefix))

    @pytest.fixture
    def job_settings(self, storage_config: StorageConfig) -> dict[str, Any]:
        """Client settings that run jobs on this store."""
        name, options = storage_config
        return {"storage": name, "storage_options": options}

    # Objects

    def test_is_an_object_store(self, store: ObjectStorageBackend) -> None:
        assert isinstance(store, ObjectStore)

    def test_check_answers(self, store: StorageBackend) -> None:
        store.check()

    def test_describe_names_the_store(self, store: StorageBackend) -> None:
        assert store.name in store.describe()

    def test_put_then_get(self, store: StorageBackend, prefix: str) -> None:
        store.put(prefix + "a", b"\x00value\xff")
        assert store.get(prefix + "a") == b"\x00value\xff"

    def test_missing_key_reads_none(self, store: StorageBackend, prefix: str) -> None:
        assert store.get(prefix + "absent") is None
        assert store.get_many([prefix + "absent", prefix + "other"]) == [None, None]

    def test_batches_keep_order(self, store: StorageBackend, prefix: str) -> None:
        items = {f"{prefix}o/{index}": f"value {index}".encode() for index in range(50)}
        store.put_many(items)
        keys = [*reversed(items), prefix + "absent", next(iter(items))]
        assert store.get_many(keys) == [items.get(key) for key in keys]
        assert store.get_many([]) == []

    def test_rewrite_with_an_equal_value(self, store: StorageBackend, prefix: str) -> None:
        store.put(prefix + "a", b"same")
        store.put_many({prefix + "a": b"same"})
        assert store.get(prefix + "a") == b"same"

    @pytest.mark.parametrize(
        "size",
        [0, 1, 1000, _MiB - 1, _MiB + 1, 3 * _MiB + 17, 64 * _MiB, 256 * _MiB],
        ids=["0B", "1B", "1KB", "1MiB-1", "1MiB+1", "3MiB+17", "64MiB", "256MiB"],
    )
    def test_object_sizes(self, store: StorageBackend, prefix: str, size: int) -> None:
        blob = _blob(size)
        store.put_many({prefix + "big": blob, prefix + "small": b"s"})
        big, small = store.get_many([prefix + "big", prefix + "small"])
        assert small == b"s"
        assert len(big) == size
        assert big == blob
        store.delete_many([prefix + "big"])
        assert store.get(prefix + "big") is None
        left = store.list_keys(prefix)
        assert left == [prefix + "small"], f"an object left parts behind: {left}"

    def test_delete_ignores_missing_keys(self, store: StorageBackend, prefix: str) -> None:
        store.put_many({prefix + "a": b"1", prefix + "b": b"2"})
        store.delete_many([prefix + "a", prefix + "absent"])
        assert store.get_many([prefix + "a", prefix + "b"]) == [None, b"2"]
        store.delete_many([])

    def test_prefixes_are_kept_apart(self, store: StorageBackend, prefix: str) -> None:
        store.put_many({prefix + "job1/a": b"1", prefix + "job1/b": b"2", prefix + "job2/a": b"3"})
        assert sorted(store.list_keys(prefix + "job1/")) == [prefix + "job1/a", prefix + "job1/b"]
        store.delete_many(store.list_keys(prefix + "job1/"))
        assert store.list_keys(prefix) == [prefix + "job2/a"]
        assert store.get(prefix + "job2/a") == b"3"

    # Jobs

    def test_finished_job_leaves_nothing_behind(self, job_settings: dict[str, Any]) -> None:
        self._run_job(job_settings, _pass)

    def test_failed_job_leaves_nothing_behind(self, job_settings: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="on purpose"):
            self._run_job(job_settings, _raise)

    @staticmethod
    def _run_job(job_settings: dict[str, Any], last: Any) -> None:
        import numpy as np

        from wukong.core.client import Client

        # Arrays of 1.6 to 6.4 MB meet in one task, so they pass through the store (chunked in some).
        sizes = [200_000 * (i + 1) for i in range(4)]
        graph: dict[Any, Any] = {("x", i): (np.arange, size) for i, size in enumerate(sizes)}
        graph["joined"] = (np.concatenate, [("x", i) for i in range(4)])
        graph["total"] = (np.sum, "joined")
        graph["out"] = (last, "total")
        client = Client(
            compute="local",
            compute_options={"mode": "threads", "workers": 4},
            set_as_default=False,
            **job_settings,
        )
        try:
            try:
                assert client.get(graph, "out") == sum(n * (n - 1) // 2 for n in sizes)
            finally:
                client.settle()
                assert client.stores.list_keys("wukong/") == [], "the job left keys behind"
        finally:
            client.close()

    @staticmethod
    def _target(store: StorageBackend) -> StorageConfig | StorageBackend:
        """What a worker opens: the store's spec in a process, the store itself in a thread."""
        return store.spec() if store.capabilities.shared_across_processes else store

    @staticmethod
    def _workers(store: StorageBackend) -> Any:
        """Several processes, or threads for a store that lives in one process."""
        if store.capabilities.shared_across_processes:
            from concurrent.futures import ProcessPoolExecutor

            return ProcessPoolExecutor(_WORKERS, mp_context=multiprocessing.get_context("spawn"))
        return ThreadPoolExecutor(_WORKERS)


class StorageConformance(ObjectConformance):
    """The object-store and the coordination checks, for a store with atomic counters.

    Such a store can be a job's metadata store.
    """

    def test_implements_what_it_declares(self, store: StorageBackend, prefix: str) -> None:
        assert store.capabilities.atomic_counters
        assert isinstance(store, CoordinationStore)
        view = store.scoped(WriteScope(prefix + "alive", ttl_seconds=60))
        for each in (store, view):
            assert each.capabilities.batched_writes == store.capabilities.batched_writes
            if each.capabilities.batched_writes:
                assert isinstance(each, BatchedWrites), f"{each!r} declares batched_writes without them"

    def test_counter_bits_count_once(self, store: StorageBackend, prefix: str) -> None:
        key = prefix + "c"
        assert store.set_bit_and_count(key, 3) == 1
        assert store.set_bit_and_count(key, 3) == 1
        assert store.set_bit_and_count(key, 0) == 2
        assert store.set_bit_and_count(key, 1000) == 3
        # A bit set again answers what its first setting did, not the count now.
        assert batches.put_and_count(
            store, {prefix + "o": b"x"}, [(key, 3), (key, 7), (prefix + "d", 0)]
        ) == [
            1,
            4,
            1,
        ]
        assert store.set_bit_and_count(key, 0) == 2
        assert store.count_bits(key) == 4
        assert store.get(prefix + "o") == b"x"

    def test_a_count_may_read_or_count_out_with_it(self, store: StorageBackend, prefix: str) -> None:
        # Executors count through a job's view; that is where a store's fused form lives, if any.
        view = Stores(store, store).scoped(prefix + "alive", None).metadata
        store.put_many({prefix + "alive": b"1", prefix + "in/1": b"first"})
        store.increment(prefix + "live", 1)
        key, reads = prefix + "c", [prefix + "in/1", prefix + "gone"]
        out = CountOut(prefix + "tasks", b"t", {prefix + "m": 3, prefix + "live": -1})

        first = batches.put_count_and_read(view, {prefix + "o": b"x"}, (key, 4), 2, reads, out)
        assert (first.count, first.values) == (1, None)
        figures = [store.increment(prefix + name, 0) for name in ("m", "live")]
        records = store.pop_all(prefix + "tasks", 0)
        # The count did not complete the counter: the count-out went with it, or nothing did.
        assert (figures, records) == (([3, 0], [b"t"]) if first.ended else ([0, 1], []))

        second = batches.put_count_and_read(view, {}, (key, 9), 2, reads, out)
        assert (second.count, second.ended) == (2, False), "a count that completes counted out"
        assert second.values in (None, [b"first", None]), "it read the wrong values, or not in order"
        # A bit set again answers its first count, and a replay that completes reads as the first did.
        assert batches.put_count_and_read(view, {}, (key, 9), 2, reads) == second
        assert store.count_bits(key) == 2
        assert store.get(prefix + "o") == b"x"

    def test_counting_bits_changes_nothing(self, store: StorageBackend, prefix: str) -> None:
        key = prefix + "c"
        assert store.count_bits(key) == 0
        assert store.list_keys(prefix) == [], "counting a missing counter created it"
        store.set_bit_and_count(key, 5)
        store.set_bit_and_count(key, 900)
        assert store.count_bits(key) == store.count_bits(key) == 2
        assert store.set_bit_and_count(key, 6) == 3

    def test_increment_many_applies_every_amount(self, store: StorageBackend, prefix: str) -> None:
        store.increment(prefix + "live", 3)
        store.increment_many({prefix + "a": 5, prefix + "b": 7, prefix + "live": -1})
        store.increment_many({prefix + "a": 1})
        assert [store.increment(prefix + name, 0) for name in ("a", "b", "live")] == [6, 7, 2]

    def test_increment_once_applies_once(self, store: StorageBackend, prefix: str) -> None:
        amounts = {prefix + "live": 2, prefix + "m": 5}
        if not store.capabilities.conditional_increments:
            with pytest.raises(StorageError, match="no conditional increments"):
                store.increment_once(prefix + "guard", amounts)
            return
        assert store.increment_once(prefix + "guard", amounts) is True
        assert store.increment_once(prefix + "guard", amounts) is False
        assert store.increment_once(prefix + "other", {prefix + "live": -1}) is True
        assert [store.increment(prefix + name, 0) for name in ("live", "m")] == [1, 5]
        # Only while a counter is positive: not at all (the guard stays unset) while it is not.
        alive, cover = prefix + "alive", prefix + "cover"
        assert store.increment_once(cover, {alive: 1}, while_positive=alive) is False
        assert store.increment(alive, 0) == 0
        store.increment(alive, 1)
        assert store.increment_once(cover, {alive: 1}, while_positive=alive) is True
        assert store.increment_once(cover, {alive: 1}, while_positive=alive) is False
        assert store.increment(alive, 0) == 2
        # Racing workers: exactly one applies.
        targets = [self._target(store)] * _WORKERS * 4
        guards, counters = [prefix + "g"] * len(targets), [prefix + "n"] * len(targets)
        with self._workers(store) as pool:
            wins = list(pool.map(_race, targets, guards, counters))
        assert wins.count(True) == 1
        assert store.increment(prefix + "n", 0) == 1

    def test_pop_all_with_a_tiny_timeout_returns_at_once(self, store: StorageBackend, prefix: str) -> None:
        for timeout in (0.0, 0.0009, 0.001, 0.0015):
            begun = time.monotonic()
            assert store.pop_all(prefix + "nothing", timeout=timeout) == []
            assert time.monotonic() - begun < 1.0, timeout
        store.append(prefix + "one", b"x")
        assert store.pop_all(prefix + "one", timeout=0.0) == [b"x"]

    def test_append_and_increment_appends_then_counts(self, store: StorageBackend, prefix: str) -> None:
        store.increment(prefix + "live", 2)
        batches.append_and_increment(store, prefix + "tasks", b"rows", {prefix + "m": 4, prefix + "live": -1})
        batches.append_and_increment(store, prefix + "tasks", b"more", {prefix + "m": 1, prefix + "live": -1})
        assert store.pop_all(prefix + "tasks", timeout=1) == [b"rows", b"more"]
        assert [store.increment(prefix + name, 0) for name in ("m", "live")] == [5, 0]

    def test_counters_under_concurrent_workers(self, store: StorageBackend, prefix: str) -> None:
        key, bits = prefix + "c", list(range(64))
        shares = [bits[worker::_WORKERS] for worker in range(_WORKERS)]
        targets = [self._target(store)] * _WORKERS
        with self._workers(store) as pool:
            answers = list(pool.map(_set_bits, targets, [key] * _WORKERS, shares))
        first_counts = {}
        for share, counts in zip(shares, answers, strict=True):
            for bit, (first, again) in zip(share, zip(counts[::2], counts[1::2], strict=True), strict=True):
                assert again == first, f"bit {bit}: a retry saw {again}, its first setting {first}"
                first_counts[bit] = first
        # Each count was seen by exactly one bit: the executor that completes a counter is unique.
        assert sorted(first_counts.values()) == list(range(1, len(bits) + 1))
        assert store.set_bit_and_count(key, 5) == first_counts[5]

    def test_increment_under_concurrent_workers(self, store: StorageBackend, prefix: str) -> None:
        key, times = prefix + "n", 200
        assert store.increment(key, 0) == 0
        assert store.list_keys(prefix) == [], "reading a counter created it"
        targets = [self._target(store)] * _WORKERS
        with self._workers(store) as pool:
            list(pool.map(_increment, targets, [key] * _WORKERS, [times] * _WORKERS))
        assert store.increment(key, 0) == _WORKERS * times
        assert store.increment(key, -(_WORKERS * times - 1)) == 1

    def test_records_arrive_in_order_and_once(self, store: StorageBackend, prefix: str) -> None:
        key, records = prefix + "records", 100
        targets = [self._target(store)] * _WORKERS
        with self._workers(store) as pool:
            list(pool.map(_append, targets, [key] * _WORKERS, range(_WORKERS), [records] * _WORKERS))
        taken: list[bytes] = []
        while batch := store.pop_all(key, timeout=0.2):
            taken.extend(batch)
        assert sorted(taken) == sorted(f"{w}:{i}".encode() for w in range(_WORKERS) for i in range(records))
        for worker in range(_WORKERS):
            mine = [int(r.split(b":")[1]) for r in taken if r.startswith(f"{worker}:".encode())]
            assert mine == sorted(mine), "one writer's records came back out of order"

    def test_pop_all_waits_for_a_record(self, store: StorageBackend, prefix: str) -> None:
        key = prefix + "records"
        started = time.monotonic()
        assert store.pop_all(key, timeout=0.3) == []
        assert 0.2 <= time.monotonic() - started < 5
        later = threading.Timer(0.3, store.append, (key, b"late"))
        later.start()
        try:
            started = time.monotonic()
            assert store.pop_all(key, timeout=30) == [b"late"]
            assert time.monotonic() - started < 10, "pop_all did not wake when a record arrived"
        finally:
            later.join()

    # A job's view: no write after the end, and keys that expire

    def test_no_write_lands_once_the_job_has_ended(self, store: StorageBackend, prefix: str) -> None:
        alive = prefix + "alive"
        store.put(alive, b"1")
        view = Stores(store, store).scoped(alive, None).metadata
        writes = _job_writes(store)
        for _, write in writes:
            write(view, prefix)  # the job is alive: every write lands
        assert len(store.list_keys(prefix)) > 1
        store.delete_many([alive])  # the client's clean-up: the alive mark first, then the rest
        store.delete_many(store.list_keys(prefix))
        for name, write in writes:
            with pytest.raises(JobEndedError):
                write(view, prefix)
            assert store.list_keys(prefix) == [], f"{name} left a key after the job ended"

    def test_writes_racing_the_end_leave_nothing(self, store: StorageBackend, prefix: str) -> None:
        alive = prefix + "alive"
        store.put(alive, b"1")
        view = Stores(store, store).scoped(alive, None).metadata
        writes = _job_writes(store)
        ended = threading.Event()
        stopped: list[str] = []

        def write_until_refused(worker: int) -> None:
            round_ = 0
            while True:
                try:
                    for _, write in writes:
                        write(view, f"{prefix}{worker}/{round_}/")
                except JobEndedError:
                    stopped.append("refused")
                    return
                round_ += 1
                if ended.is_set() and round_ > 10_000:
                    stopped.append("never refused")
                    return

        with ThreadPoolExecutor(_WORKERS) as pool:
            futures = [pool.submit(write_until_refused, worker) for worker in range(_WORKERS)]
            time.sleep(0.3)
            store.delete_many([alive])
            ended.set()
            store.delete_many(store.list_keys(prefix))
            for future in futures:
                future.result(timeout=60)
        assert stopped == ["refused"] * _WORKERS
        assert store.list_keys(prefix) == [], "a write that raced the end stayed"

    def test_keys_written_in_a_job_expire_where_the_store_says_so(
        self, store: StorageBackend, prefix: str
    ) -> None:
        alive = prefix + "alive"
        store.put(alive, b"1")
        view = store.scoped(WriteScope(alive, ttl_seconds=1))
        for _, write in _job_writes(store):
            write(view, prefix)
        written = set(store.list_keys(prefix)) - {alive}
        assert len(written) > 5, "the writes of a job's view did not land"
        if not store.capabilities.expiring_keys:
            # A store that cannot expire keys takes the lifetime and keeps them (the clean-up and
            # wukong gc remove them).
            time.sleep(1.5)
            assert set(store.list_keys(prefix)) >= written
            return
        deadline = time.monotonic() + 10
        while set(store.list_keys(prefix)) & written and time.monotonic() < deadline:
            time.sleep(0.25)
        assert not set(store.list_keys(prefix)) & written, "keys outlived their lifetime"


class DataStoreConformance(ObjectConformance):
    """The checks for a data-only store (no atomic counters, like S3).

    Subclasses also override ``job_settings`` to pair the store with a metadata store.
    """

    @pytest.fixture
    def job_settings(self, storage_config: StorageConfig) -> dict[str, Any]:
        """Client settings with this store as ``data_storage``; subclasses must name a metadata store."""
        raise NotImplementedError("override job_settings to pair a data-only store with a metadata store")

    def test_declares_no_counters(self, store: ObjectStorageBackend) -> None:
        assert not store.capabilities.atomic_counters
        assert not store.capabilities.batched_writes

    @pytest.mark.parametrize(
        "operation",
        [
            lambda store: store.set_bit_and_count("wukong-conformance/c", 0),
            lambda store: store.increment("wukong-conformance/n", 1),
            lambda store: store.count_bits("wukong-conformance/c"),
            lambda store: store.append("wukong-conformance/r", b"x"),
            lambda store: store.pop_all("wukong-conformance/r", 0.1),
        ],
        ids=["set_bit_and_count", "increment", "count_bits", "append", "pop_all"],
    )
    def test_refuses_counters_saying_why(self, store: ObjectStorageBackend, operation: Any) -> None:
        """An object store only has no such method; one built on :class:`StorageBackend` refuses."""
        if not isinstance(store, CoordinationStore):
            with pytest.raises(AttributeError):
                operation(store)
            return
        with pytest.raises(StorageError, match="no atomic counters"):
            operation(store)
