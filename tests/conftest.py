"""Shared fixtures: real servers, and one client per backend pairing for the whole session.

The servers live for the whole session and every test shares them, so a key one test leaves would
fail every later test that looks for leftovers. After each test, every session store is checked
for job keys: a leak fails the test that caused it (at its teardown, naming the keys), and the
store is cleared, so one leak is one failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

import wukong
from wukong.backends.storage.base import StorageBackend
from wukong.core.backends import create_storage
from wukong.core.stores import Stores
from wukong.plugins import reset_plugin_manager
from wukong.testing.servers import (
    Server,
    lambda_server,
    memcached_server,
    redis_cluster,
    redis_server,
    s3_server,
)

BUCKET = "wukong-test"
FSSPEC_PLUGIN = Path(__file__).parent.parent / "plugins" / "wukong-fsspec"


@contextmanager
def installed_plugin(package: Path, target: Path) -> Iterator[Path]:
    """pip-install ``package`` into ``target`` and put it on the path, of this process and its workers."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(package)],
        check=True,
    )  # fmt: skip
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(target), *_python_path()])
    reset_plugin_manager()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in _python_path() if p != str(target))
        reset_plugin_manager()


def _python_path() -> list[str]:
    return [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]


Settings = Callable[[pytest.FixtureRequest], dict[str, Any]]


# The compute backends engine tests run on, as functions of the pytest request (which starts the
# local Lambda endpoints lazily).
def _processes(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"compute": "local"}


def _speculating(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Worker processes that back up stragglers: executors count through guarded increments."""
    return {"compute": "local", "compute_options": {"speculate_after": 4, "speculate_min_seconds": 0.5}}


def _threads(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"compute": "local", "compute_options": {"mode": "threads"}}


def lambda_settings(endpoint: str, **options: Any) -> dict[str, Any]:
    """Client settings that invoke the local Lambda endpoint's function."""
    return {
        "compute": "lambda",
        "compute_options": {"endpoint_url": endpoint, "region_name": "us-east-1", **options},
    }


def _lambda_small_payloads(request: pytest.FixtureRequest) -> dict[str, Any]:
    # 400-byte requests: every invocation of an S3-backed job is kept in storage and sent by key.
    endpoint = request.getfixturevalue("lambda_endpoint")
    return lambda_settings(endpoint, invoker={"max_request_bytes": 400})


def _lambda_duplicates(request: pytest.FixtureRequest) -> dict[str, Any]:
    return lambda_settings(request.getfixturevalue("lambda_duplicates_endpoint"))


# Fast platform figures (the model's own defaults are tested in test_simulated_lambda.py), with
# duplicate deliveries and a concurrency limit that fan-outs reach.
SIMULATED_FOR_TESTS = {
    "invoke_ms": 2,
    "call_ms": 0.5,
    "cold_start_ms": 5,
    "concurrency": 200,
    "duplicate_rate": 0.05,
}


def _simulated(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"compute": "simulated-lambda", "compute_options": SIMULATED_FOR_TESTS}


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


def _fsspec_with_redis(request: pytest.FixtureRequest) -> dict[str, Any]:
    url = request.getfixturevalue("fsspec_data_url")
    return {**_redis(request), "data_storage": "fsspec", "data_storage_options": {"url": url}}


def _s3_with_memcached(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {**_memcached(request), **s3_data_settings(request.getfixturevalue("s3_endpoint"))}


def s3_data_settings(endpoint: str) -> dict[str, Any]:
    """Client settings that keep task outputs in the test S3 server's bucket."""
    return {"data_storage": f"s3://{BUCKET}/data", "data_storage_options": {"endpoint_url": endpoint}}


# Every engine test runs over each of these (compute, storage) pairings: every store with worker
# processes (speculating on Redis), the in-process ones with threads, and Lambda (through the local
# Invoke API server) with payloads sent by key, and with every event delivered twice, and the
# simulated Lambda.
PAIRINGS: dict[str, tuple[Settings, Settings]] = {
    "processes-embedded": (_processes, lambda request: {"storage": "embedded"}),
    "processes-speculating-redis": (_speculating, _redis),
    "processes-redis-sharded": (_processes, _sharded),
    "processes-redis-cluster": (_processes, _cluster),
    "processes-memcached": (_processes, _memcached),
    "processes-s3+redis": (_processes, _s3_with_redis),
    # A third-party store (plugins/wukong-fsspec, installed like any plugin) for the data.
    "processes-fsspec+redis": (_processes, _fsspec_with_redis),
    "threads-s3+memcached": (_threads, _s3_with_memcached),
    "threads-redis": (_threads, _redis),
    "threads-ideal": (_threads, lambda request: {"storage": "ideal"}),
    "lambda-s3+redis": (_lambda_small_payloads, _s3_with_redis),
    "lambda-duplicates-memcached": (_lambda_duplicates, _memcached),
    "simulated-lambda-redis": (_simulated, _redis),
}


# The session's shared stores, watched for leftovers after every test (see the module docstring).
_watched: list[StorageBackend] = []


def _watch(name: str, **options: Any) -> None:
    _watched.append(create_storage(name, options))


def left_behind(stores: Stores | StorageBackend, test: str) -> str | None:
    """Clear the job keys left in ``stores``; say which (blaming ``test``), or ``None`` if none were."""
    left = stores.list_keys("wukong/")
    if not left:
        return None
    if isinstance(stores, Stores):
        stores.delete(left, [] if stores.single else left)
    else:
        stores.delete_many(left)
    return f"{test} left {len(left)} key(s) in {stores.describe()}: {left[:6]}"


@pytest.fixture(autouse=True)
def _nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    leaks = [leak for store in _watched if (leak := left_behind(store, request.node.nodeid))]
    if leaks:
        pytest.fail("\n".join(leaks), pytrace=False)


@pytest.fixture(scope="session")
def redis() -> Iterator[Server]:
    with redis_server() as server:
        _watch(server.url)
        yield server


@pytest.fixture(scope="session")
def redis_url(redis: Server) -> str:
    return redis.url


@pytest.fixture(scope="session")
def redis_shards() -> Iterator[list[str]]:
    with ExitStack() as stack:
        urls = [stack.enter_context(redis_server()).url for _ in range(3)]
        _watch("redis-sharded", urls=urls)
        yield urls


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    with redis_cluster(3) as nodes:
        _watch("redis-cluster", url=nodes[0].url)
        yield nodes[0].url


@pytest.fixture(scope="session")
def memcached_url() -> Iterator[str]:
    with memcached_server() as server:
        _watch(server.url)
        yield server.url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with s3_server(BUCKET) as server:
        _watch(s3_data_settings(server.url)["data_storage"], endpoint_url=server.url)
        yield server.url


@pytest.fixture(scope="session")
def fsspec_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The example fsspec store, pip-installed into a directory of its own as a user would."""
    with installed_plugin(FSSPEC_PLUGIN, tmp_path_factory.mktemp("fsspec-plugin")):
        yield


@pytest.fixture(scope="session")
def fsspec_data_url(fsspec_plugin: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A local directory as the fsspec store's root, watched for leftovers."""
    url = f"file://{tmp_path_factory.mktemp('fsspec-data')}"
    _watch("fsspec", url=url)
    return url


@pytest.fixture(scope="session")
def lambda_endpoint() -> Iterator[str]:
    with lambda_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def lambda_duplicates_endpoint() -> Iterator[str]:
    with lambda_server("--duplicates") as server:
        yield server.url


@pytest.fixture(scope="session")
def _clients() -> Iterator[dict[str, wukong.Client]]:
    clients: dict[str, wukong.Client] = {}
    yield clients
    for client in clients.values():
        client.close()


# Pairings that only some tests run on, beside PAIRINGS.
OTHER_PAIRINGS: dict[str, tuple[Settings, Settings]] = {
    # Workers with a temp dir and home each, as Lambda containers have: Dask shuffles run as tasks.
    "share-nothing-embedded": (
        lambda request: {"compute": "local", "compute_options": {"share_nothing": True}},
        lambda request: {"storage": "embedded"},
    ),
}


def session_client(
    request: pytest.FixtureRequest, clients: dict[str, wukong.Client], name: str
) -> Iterator[wukong.Client]:
    """The session's client for pairing ``name``; the stores must be empty after the test."""
    if name not in clients:
        compute, storage = {**PAIRINGS, **OTHER_PAIRINGS}[name]
        # Not Dask's default: a test's plain compute must stay Dask's own, to compare with.
        clients[name] = wukong.Client(
            **compute(request), **storage(request), timeout=120, set_as_default=False
        )
    client = clients[name]
    yield client
    client.settle()
    leak = left_behind(client.stores, request.node.nodeid)  # the embedded and ideal stores too
    if leak:
        pytest.fail(leak, pytrace=False)


@pytest.fixture(params=list(PAIRINGS))
def client(request: pytest.FixtureRequest, _clients: dict[str, wukong.Client]) -> Iterator[wukong.Client]:
    """A client for one pairing, shared by the session; the stores must be empty after each test."""
    yield from session_client(request, _clients, request.param)
