"""Every built-in store runs the conformance suite that third-party stores run, on a real server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import s3_data_settings
from wukong.testing.storage import DataStoreConformance, StorageConfig, StorageConformance


class TestRedis(StorageConformance):
    @pytest.fixture
    def storage_config(self, redis_url: str) -> StorageConfig:
        return redis_url, {}


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


class TestIdeal(StorageConformance):
    @pytest.fixture
    def storage_config(self) -> StorageConfig:
        return "ideal", {}
