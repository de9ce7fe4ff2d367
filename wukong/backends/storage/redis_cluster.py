"""A Redis Cluster as a wukong store, through redis-py's cluster client.

Keys carry no hash tags, so a job's objects and counters spread over every primary by hash slot.
Batch reads and writes are split by slot (``mget_nonatomic``, ``mset_nonatomic``), and
:meth:`RedisClusterStorage.put_and_count` sends the object writes, waits for every node to
acknowledge them, and only then sends the counter scripts: write before count across nodes.
Everything else is the single-server store's code, on the cluster client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from wukong.backends.storage.base import StorageBackend
from wukong.backends.storage.redis import SET_BIT_AND_COUNT, RedisStorage, translated
from wukong.errors import StorageError


class RedisClusterStorage(RedisStorage):
    """A Redis Cluster reached through any of its nodes (``url``); the others are discovered."""

    name = "redis-cluster"

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
                pipe.incrby(key, amount)
            pipe.execute()
        if last[0]:
            self._client.incrby(*last)

    append_and_increment = StorageBackend.append_and_increment  # a script cannot span hash slots
    increment_once = StorageBackend.increment_once
    _one_node = False

    @translated
    def put_and_count(self, items: Mapping[str, bytes], counters: Sequence[tuple[str, int]]) -> list[int]:
        """The writes (every node acknowledges), then the counter scripts, each phase one pipeline."""
        if items:
            writes = self._client.pipeline()
            for key, value in items.items():
                writes.set(key, value)
            writes.execute()
        if not counters:
            return []
        counts = self._client.pipeline()
        for key, bit in counters:
            counts.execute_command("EVAL", SET_BIT_AND_COUNT, 1, key, bit)
        return [int(count) for count in counts.execute()]
