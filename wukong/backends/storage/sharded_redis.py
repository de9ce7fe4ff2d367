"""Several independent Redis servers as one store, keys placed by consistent hashing.

Each key lives on the shard a ketama hash ring (uhashring) picks for it, so adding a shard moves
only about ``1 / shards`` of the keys. A batch is split by shard, and each shard gets one pipelined
round trip. A counter and the objects it guards may live on different shards, so
:meth:`ShardedRedisStorage.put_and_count` keeps *write before count* across shards: every object
write is acknowledged before any counter is touched (one pipeline per shard when everything lands
on one shard).

A view scoped to a job gives every key the scope's lifetime, on its own shard (each shard's scoped
view). A job's alive mark lives on one shard, so no shard can check it beside a write: the core
checks after each write instead (:mod:`wukong.core.fence`).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import Field
from uhashring import HashRing

from wukong.backends.storage.base import Counted, CountOut, StorageBackend, StorageCapabilities, WriteScope
from wukong.backends.storage.redis import RedisConnectionOptions, RedisStorage


class ShardedRedisOptions(RedisConnectionOptions):
    """Options of the ``redis-sharded`` store: the connection options, for every shard, and the shards.

    Attributes:
        urls: one ``redis://`` (or ``rediss://``, ``unix://``) URL per shard; order does not matter.

    """

    urls: list[str] = Field(min_length=1)


class ShardedRedisStorage(StorageBackend):
    """Redis servers sharing a job's keys by consistent hashing."""

    name = "redis-sharded"
    Options = ShardedRedisOptions

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.capabilities = StorageCapabilities(
            max_object_bytes=self.options.max_object_bytes, expiring_keys=True, batched_writes=True
        )
        self.shards = {
            url: RedisStorage(url=url, **self.options.model_dump(exclude={"urls"}))
            for url in dict.fromkeys(self.options.urls)
        }
        self._ring = HashRing(nodes=list(self.shards))

    def shard_of(self, key: str) -> RedisStorage:
        """The shard that holds ``key``."""
        return self.shards[self._ring.get_node(key)]

    def _by_shard(self, keys: Iterable[str]) -> dict[RedisStorage, list[str]]:
        groups: dict[RedisStorage, list[str]] = defaultdict(list)
        for key in keys:
            groups[self.shard_of(key)].append(key)
        return groups

    def describe(self) -> str:
        """Name the store and its shards."""
        return f"{self.name} store over {len(self.shards)} shards ({', '.join(self.shards)})"

    def check(self) -> None:
        """Ping every shard."""
        for shard in self.shards.values():
            shard.check()

    def put(self, key: str, value: bytes) -> None:
        """SET on the key's shard."""
        self.shard_of(key).put(key, value)

    def put_many(self, items: Mapping[str, bytes]) -> None:
        """One MSET per shard."""
        for shard, keys in self._by_shard(items).items():
            shard.put_many({key: items[key] for key in keys})

    def get(self, key: str) -> bytes | None:
        """GET on the key's shard."""
        return self.shard_of(key).get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """One MGET per shard, reassembled in the order asked."""
        found: dict[str, bytes | None] = {}
        for shard, shard_keys in self._by_shard(keys).items():
            found.update(zip(shard_keys, shard.get_many(shard_keys), strict=True))
        return [found[key] for key in keys]

    def delete_many(self, keys: Iterable[str]) -> None:
        """UNLINK on every shard that holds some of the keys."""
        for shard, shard_keys in self._by_shard(keys).items():
            shard.delete_many(shard_keys)

    def set_bit_and_count(self, key: str, bit: int) -> int:
        """The counter's shard sets the bit and counts."""
        return self.shard_of(key).set_bit_and_count(key, bit)

    def count_bits(self, key: str) -> int:
        """HLEN on the counter's shard."""
        return self.shard_of(key).count_bits(key)

    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """One script per run of consecutive keys on one shard, the runs in order.

        The order across keys matters: executors send their metrics before their count-out, and
        the client reads the metrics once the count reaches zero.
        """
        run: dict[str, int] = {}
        run_shard: RedisStorage | None = None
        for key, amount in amounts.items():
            shard = self.shard_of(key)
            if run and shard is not run_shard:
                run_shard.increment_many(run)  # type: ignore[union-attr]
                run = {}
            run[key], run_shard = amount, shard
        if run:
            run_shard.increment_many(run)  # type: ignore[union-attr]

    def put_and_count(self, items: Mapping[str, bytes], counters: Sequence[tuple[str, int]]) -> list[int]:
        """Write every object (acknowledged), then set the counters' bits, shard by shard."""
        shards = {self.shard_of(key) for key in items} | {self.shard_of(key) for key, _ in counters}
        if len(shards) == 1:  # one shard runs the pipeline in order
            return shards.pop().put_and_count(items, counters)
        if items:
            self.put_many(items)
        counts: dict[tuple[str, int], int] = {}
        grouped: dict[RedisStorage, list[tuple[str, int]]] = defaultdict(list)
        for counter in counters:
            grouped[self.shard_of(counter[0])].append(counter)
        for shard, shard_counters in grouped.items():
            counts.update(zip(shard_counters, shard.put_and_count({}, shard_counters), strict=True))
        return [counts[counter] for counter in counters]

    def put_count_and_read(
        self,
        items: Mapping[str, bytes],
        counter: tuple[str, int],
        complete: int,
        reads: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """The count alone, as :meth:`put_and_count` sends it: it declines to read or count out."""
        return Counted(self.put_and_count(items, [counter])[0], None, False)

    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """RPUSH on the list's shard, then :meth:`increment_many` (the shards' runs, in order)."""
        self.append(key, record)
        self.increment_many(amounts)

    def increment(self, key: str, amount: int) -> int:
        """INCRBY on the key's shard."""
        return self.shard_of(key).increment(key, amount)

    def append(self, key: str, record: bytes) -> None:
        """RPUSH on the list's shard."""
        self.shard_of(key).append(key, record)

    def pop_all(self, key: str, timeout: float) -> list[bytes]:
        """BLPOP on the list's shard."""
        return self.shard_of(key).pop_all(key, timeout)

    def list_keys(self, prefix: str) -> list[str]:
        """SCAN every shard."""
        return sorted(key for shard in self.shards.values() for key in shard.list_keys(prefix))

    def scoped(self, scope: WriteScope) -> StorageBackend:
        """A view whose shards give every key ``scope.ttl_seconds`` (the alive mark is not checked)."""
        if scope.ttl_seconds is None:
            return self
        view = copy.copy(self)
        shard_scope = WriteScope(None, scope.ttl_seconds)
        view.shards = {url: shard.scoped(shard_scope) for url, shard in self.shards.items()}  # type: ignore[misc]
        return view

    def close(self) -> None:
        """Close every shard's connections (a scoped view's shards close nothing)."""
        for shard in self.shards.values():
            shard.close()
