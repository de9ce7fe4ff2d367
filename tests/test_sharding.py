"""Sharded Redis places keys by consistent hashing: a new shard takes its share and moves little else."""

from __future__ import annotations

from collections import Counter

from wukong.backends.storage.sharded_redis import ShardedRedisStorage

KEYS = [f"wukong/job/o/{task}" for task in range(20_000)]


def _placement(urls: list[str]) -> dict[str, str]:
    store = ShardedRedisStorage(urls=urls)  # connections open lazily: no server needed to place keys
    try:
        return {key: store.shard_of(key).url for key in KEYS}
    finally:
        store.close()


def test_keys_spread_evenly_over_shards():
    urls = [f"redis://10.0.0.{n}:6379/0" for n in range(1, 5)]
    load = Counter(_placement(urls).values())
    assert set(load) == set(urls)
    assert max(load.values()) < 1.5 * len(KEYS) / len(urls)


def test_adding_a_shard_moves_only_its_share():
    four = [f"redis://10.0.0.{n}:6379/0" for n in range(1, 5)]
    five = [*four, "redis://10.0.0.5:6379/0"]
    before, after = _placement(four), _placement(five)
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == five[-1] for key in moved), "a key moved between two old shards"
    assert 0.1 < len(moved) / len(KEYS) < 0.3  # about 1/5


def test_order_of_the_urls_does_not_matter():
    urls = [f"redis://10.0.0.{n}:6379/0" for n in range(1, 4)]
    assert _placement(urls) == _placement(urls[::-1])
