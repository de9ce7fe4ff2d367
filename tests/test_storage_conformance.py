"""Every built-in store runs the conformance suite that third-party stores run, on a real server."""

from __future__ import annotations

import os
from typing import Any

import pytest
import redis

from tests.conftest import s3_data_settings
from wukong.backends.storage.base import CountOut, StorageBackend
from wukong.core.stores import Stores
from wukong.testing.storage import DataStoreConformance, StorageConfig, StorageConformance


class TestRedis(StorageConformance):
    @pytest.fixture
    def storage_config(self, redis_url: str) -> StorageConfig:
        return redis_url, {}

    def test_a_count_reads_small_inputs_or_counts_out(self, store: StorageBackend, prefix: str) -> None:
        view = Stores(store, store).scoped(prefix + "alive", None).metadata
        small, big = b"s" * 10, b"b" * (64 * 1024 + 1)
        store.put_many({prefix + "alive": b"1", prefix + "small": small, prefix + "big": big})
        out = CountOut(prefix + "tasks", None, {prefix + "live": 1})
        for counter, value in (("c", small), ("d", big)):
            reads = [prefix + ("small" if value is small else "big")]
            assert view.put_count_and_read({}, (prefix + counter, 0), 2, reads, out) == (1, None, True)
            # A script copies what it reads: a big input is left for the executor's own read.
            expected = [small] if value is small else None
            assert view.put_count_and_read({}, (prefix + counter, 1), 2, reads, out) == (2, expected, False)
        assert store.increment(prefix + "live", 0) == 2

    def test_a_connection_the_server_dropped_is_reopened(self, store: StorageBackend, prefix: str) -> None:
        store.put(prefix + "k", b"before")
        assert store.get(prefix + "k") == b"before"  # the executor's path now holds a connection
        killed = redis.Redis.from_url(store.url)
        assert killed.client_kill_filter(_type="normal", skipme=True) >= 1
        killed.close()
        store.put(prefix + "k", b"after")
        assert store.get(prefix + "k") == b"after"
        assert store.get_many([prefix + "k", prefix + "none"]) == [b"after", None]

    def test_a_forked_child_opens_its_own_connection(self, store: StorageBackend, prefix: str) -> None:
        store.put_many({prefix + "parent": b"p" * 100, prefix + "child": b"c" * 100})
        assert store.get(prefix + "parent") == b"p" * 100
        pid = os.fork()
        if pid == 0:  # the child: a shared socket would mix its replies with the parent's
            replies = {store.get(prefix + "child") for _ in range(200)}
            os._exit(0 if replies == {b"c" * 100} else 1)
        replies = {store.get(prefix + "parent") for _ in range(200)}
        _, status = os.waitpid(pid, 0)
        assert replies == {b"p" * 100}
        assert os.waitstatus_to_exitcode(status) == 0


class TestEmbedded(StorageConformance):
    @pytest.fixture
    def storage_config(self) -> StorageConfig:
        return "embedded", {}


class TestShardedRedis(StorageConformance):
    @pytest.fixture
    def storage_config(self, redis_shards: list[str]) -> StorageConfig:
        return "redis-sharded", {"urls": redis_shards}


class TestRedisCluster(StorageConformance):
    @pytest.fixture
    def storage_config(self, redis_cluster_url: str) -> StorageConfig:
        return "redis-cluster", {"url": redis_cluster_url}


class TestMemcached(StorageConformance):
    @pytest.fixture
    def storage_config(self, memcached_url: str) -> StorageConfig:
        return memcached_url, {}


class TestS3(DataStoreConformance):
    @pytest.fixture
    def storage_config(self, s3_endpoint: str) -> StorageConfig:
        return "s3://wukong-test/conformance", {"endpoint_url": s3_endpoint}

    @pytest.fixture
    def job_settings(self, s3_endpoint: str, redis_url: str) -> dict[str, Any]:
        return {"storage": redis_url, **s3_data_settings(s3_endpoint)}


class TestFsspecPlugin(DataStoreConformance):
    """The example third-party store, installed from plugins/wukong-fsspec, on a local directory."""

    @pytest.fixture
    def storage_config(self, fsspec_data_url: str) -> StorageConfig:
        return "fsspec", {"url": fsspec_data_url}

    @pytest.fixture
    def job_settings(self, fsspec_data_url: str, redis_url: str) -> dict[str, Any]:
        return {
            "storage": redis_url,
            "data_storage": "fsspec",
            "data_storage_options": {"url": fsspec_data_url},
        }


class TestFsspecPluginInMemory(DataStoreConformance):
    """The same store on fsspec's in-memory filesystem, which lives in one process (jobs run threads)."""

    @pytest.fixture
    def storage_config(self, fsspec_plugin: None) -> StorageConfig:
        return "fsspec", {"url": "memory://wukong-conformance"}

    @pytest.fixture
    def job_settings(self, storage_config: StorageConfig, redis_url: str) -> dict[str, Any]:
        return {"storage": redis_url, "data_storage": "fsspec", "data_storage_options": storage_config[1]}


class TestIdeal(StorageConformance):
    @pytest.fixture
    def storage_config(self) -> StorageConfig:
        return "ideal", {}
