"""Shared fixtures: real servers, and one client per backend pairing for the whole session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

import wukong
from wukong.testing.servers import Server, memcached_server, redis_cluster, redis_server, s3_server

BUCKET = "wukong-test"

PROCESSES: dict[str, Any] = {"compute": "local"}
THREADS: dict[str, Any] = {"compute": "local", "compute_options": {"mode": "threads"}}


# The stores engine tests run on, as functions of the pytest request (which starts servers lazily).
def _redis(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"storage": request.getfixturevalue("redis_url")}


def _sharded(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"storage": "redis-sharded", "storage_options": {"urls": request.getfixturevalue("redis_shards")}}


def _cluster(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        "storage": "redis-cluster",
        "storage_options": {"url": request.getfixturevalue("redis_cluster_url")},
    }


def _memcached(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"storage": request.getfixturevalue("memcached_url")}


def _s3_with_redis(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {**_redis(request), **s3_data_settings(request.getfixturevalue("s3_endpoint"))}


def _s3_with_memcached(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {**_memcached(request), **s3_data_settings(request.getfixturevalue("s3_endpoint"))}


def s3_data_settings(endpoint: str) -> dict[str, Any]:
    """Client settings that keep task outputs in the test S3 server's bucket."""
    return {"data_storage": f"s3://{BUCKET}/data", "data_storage_options": {"endpoint_url": endpoint}}


# Every engine test runs over each of these (compute, storage) pairings: every store with worker
# processes, and the in-process ones with threads.
PAIRINGS: dict[str, tuple[dict[str, Any], Callable[[pytest.FixtureRequest], dict[str, Any]]]] = {
    "processes-embedded": (PROCESSES, lambda request: {"storage": "embedded"}),
    "processes-redis": (PROCESSES, _redis),
    "processes-redis-sharded": (PROCESSES, _sharded),
    "processes-redis-cluster": (PROCESSES, _cluster),
    "processes-memcached": (PROCESSES, _memcached),
    "processes-s3+redis": (PROCESSES, _s3_with_redis),
    "threads-s3+memcached": (THREADS, _s3_with_memcached),
    "threads-redis": (THREADS, _redis),
    "threads-ideal": (THREADS, lambda request: {"storage": "ideal"}),
}


@pytest.fixture(scope="session")
def redis() -> Iterator[Server]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis: Server) -> str:
    return redis.url


@pytest.fixture(scope="session")
def redis_shards() -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(redis_server()).url for _ in range(3)]


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    with redis_cluster(3) as nodes:
        yield nodes[0].url


@pytest.fixture(scope="session")
def memcached_url() -> Iterator[str]:
    with memcached_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with s3_server(BUCKET) as server:
        yield server.url


@pytest.fixture(scope="session")
def _clients() -> Iterator[dict[str, wukong.Client]]:
    clients: dict[str, wukong.Client] = {}
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(params=list(PAIRINGS))
def client(request: pytest.FixtureRequest, _clients: dict[str, wukong.Client]) -> Iterator[wukong.Client]:
    """A client for one pairing, shared by the session; the stores must be empty after each test."""
    name = request.param
    if name not in _clients:
        compute, storage = PAIRINGS[name]
        _clients[name] = wukong.Client(**compute, **storage(request), timeout=120)
    client = _clients[name]
    yield client
    client.settle()
    assert client.stores.list_keys("wukong/") == [], "a job left keys behind"
