"""A Redis Cluster as a wukong store, through redis-py's cluster client.

Keys carry no hash tags, so a job's objects and counters spread over every primary by hash slot.
Batch reads and writes are split by slot (``mget_nonatomic``, ``mset_nonatomic``), and
:meth:`RedisClusterStorage.put_and_count` sends the object writes, waits for every node to
acknowledge them, and only then sends the counter scripts: write before count across nodes. The
commands on one key each are the single-server store's (:class:`RedisStoreBase`), on the cluster
client. A script cannot span hash slots, so there is no conditional increment (no speculation).

A view scoped to a job gives every key the scope's lifetime (``SET ... PX``, and the single-server
store's scoped scripts, each on one key, so one slot). A job's keys span slots, so no script can
check the job's alive mark beside a write: the core checks after each write batch instead
(:mod:`wukong.core.fence`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from wukong.backends.storage.base import StorageBackend, StorageCapabilities, WriteScope
from wukong.backends.storage.redis import (
    SCOPED_APPEND_AND_INCREMENT,
    SCOPED_INCREMENT,
    SCOPED_SET_BIT_AND_COUNT,
    SET_BIT_AND_COUNT,
    RedisStoreBase,
    translated,
)
from wukong.errors import StorageError


class RedisClusterStorage(RedisStoreBase):
    """A Redis Cluster reached through any of its nodes (``url``); the others are discovered."""

    name = "redis-cluster"

    def _capabilities(self) -> StorageCapabilities:
        """Expiring keys and the batched writes; no script may span slots, so nothing more."""
        return StorageCapabilities(
            max_object_bytes=self.options.max_object_bytes, expiring_keys=True, batched_writes=True
        )

    def _connect(self) -> Any:
        """Connect to a node and read the cluster's slot map (the client does this eagerly)."""
        try:
            return RedisCluster.from_url(
                self.url,
                socket_timeout=self.options.socket_timeout,
                socket_connect_timeout=self.options.connect_timeout,
            )
        except (RedisError, RedisClusterException) as error:
            raise StorageError(
                f"{self.describe()} cannot be reached: {type(error).__name__}: {error}"
            ) from error

    @translated
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """MSET per hash slot."""
        if items:
            self._client.mset_nonatomic(dict(items))

    @translated
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """MGET per hash slot, reassembled in order."""
        if not keys:
            return []
        return self._client.mget_nonatomic(list(keys))

    @translated
    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """INCRBY all but the last in one cluster pipeline, then the last.

        A script cannot span hash slots, and a pipeline's commands to different nodes may land in
        any order; the last amount (an executor's count-out) must land after the others.
        """
        *first, last = amounts.items() if amounts else [("", 0)]
        if first:
            pipe = self._client.pipeline()
            for key, amount in first:
                self._increment_on(pipe, key, amount)
            pipe.execute()
        if last[0]:
            self._increment_on(self._client, *last)

    def _increment_on(self, target: Any, key: str, amount: int) -> Any:
        """Queue (on a pipeline) or run INCRBY."""
        return target.incrby(key, amount)

    @translated
    def put_and_count(self, items: Mapping[str, bytes], counters: Sequence[tuple[str, int]]) -> list[int]:
        """The writes (every node acknowledges), then the counter scripts, each phase one pipeline."""
        self._put_pipelined(items)
        if not counters:
            return []
        counts = self._client.pipeline()
        for key, bit in counters:
            self._count_on(counts, key, bit)
        return [int(count) for count in counts.execute()]

    def _put_pipelined(self, items: Mapping[str, bytes]) -> None:
        """SET every item in one cluster pipeline; return once every node has acknowledged."""
        if items:
            writes = self._client.pipeline()
            for key, value in items.items():
                writes.set(key, value)
            writes.execute()

    def _count_on(self, target: Any, key: str, bit: int) -> Any:
        """Queue (on a pipeline) or run the counter script on ``key``."""
        return target.execute_command("EVAL", SET_BIT_AND_COUNT, 1, key, bit)

    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """RPUSH, then :meth:`increment_many`: the list and the counters may live on different nodes."""
        self.append(key, record)
        self.increment_many(amounts)

    def scoped(self, scope: WriteScope) -> StorageBackend:
        """A view whose keys expire after ``scope.ttl_seconds`` (the alive mark is not checked here)."""
        if scope.ttl_seconds is None:
            return self
        return ExpiringRedisClusterStorage(self, scope.ttl_seconds)


class ExpiringRedisClusterStorage(RedisClusterStorage):
    """A job's view of a cluster: every key it writes expires; it shares the cluster's connections.

    Each write is a ``SET ... PX`` or one of the single-server store's scoped scripts on one key
    (that key doubles as the script's first key, which the unchecked prelude never reads), so every
    command stays within one slot. The batches are the cluster's, made of these writes.
    """

    def __init__(self, store: RedisClusterStorage, ttl_seconds: int):  # no super().__init__: shares it
        self.__dict__.update(store.__dict__)
        self.store, self._ttl_ms = store, ttl_seconds * 1000

    def _on_key(self, target: Any, script: str, key: str, *args: Any) -> Any:
        """Queue or run ``script`` on ``key`` alone, with the lifetime and no alive check."""
        return target.execute_command("EVAL", script, 2, key, key, 0, self._ttl_ms, *args)

    @translated
    def put(self, key: str, value: bytes) -> None:
        """SET with the lifetime."""
        self._client.set(key, value, px=self._ttl_ms)

    @translated
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """SETs with the lifetime, in one cluster pipeline."""
        self._put_pipelined(items)

    def _put_pipelined(self, items: Mapping[str, bytes]) -> None:
        """SET every item with the lifetime in one cluster pipeline, acknowledged by every node."""
        if items:
            pipe = self._client.pipeline()
            for key, value in items.items():
                pipe.set(key, value, px=self._ttl_ms)
            pipe.execute()

    def _count_on(self, target: Any, key: str, bit: int) -> Any:
        """The counter script, with the lifetime."""
        return self._on_key(target, SCOPED_SET_BIT_AND_COUNT, key, bit)

    def _increment_on(self, target: Any, key: str, amount: int) -> Any:
        """INCRBY with the lifetime."""
        return self._on_key(target, SCOPED_INCREMENT, key, amount)

    @translated
    def set_bit_and_count(self, key: str, bit: int) -> int:
        """The counter script, with the lifetime."""
        return int(self._count_on(self._client, key, bit))

    @translated
    def increment(self, key: str, amount: int) -> int:
        """INCRBY with the lifetime (a read, ``amount == 0``, is a plain GET)."""
        if amount == 0:
            return int(self._client.get(key) or 0)
        return int(self._increment_on(self._client, key, amount))

    @translated
    def append(self, key: str, record: bytes) -> None:
        """RPUSH with the lifetime."""
        self._on_key(self._client, SCOPED_APPEND_AND_INCREMENT, key, record)

    def close(self) -> None:
        """Nothing: the cluster store this view came from owns the connections."""
