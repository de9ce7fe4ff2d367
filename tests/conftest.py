"""Shared fixtures: real servers, and one client per backend pairing for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import wukong
from tests.servers import redis_server

# Every engine test runs over each of these (compute, storage) pairings.
PAIRINGS = {
    "processes-embedded": ({"compute": "local"}, {"storage": "embedded"}),
    "processes-redis": ({"compute": "local"}, {"storage": "redis"}),
    "threads-ideal": (
        {"compute": "local", "compute_options": {"mode": "threads"}},
        {"storage": "ideal"},
    ),
    "threads-redis": (
        {"compute": "local", "compute_options": {"mode": "threads"}},
        {"storage": "redis"},
    ),
}


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def _clients(request: pytest.FixtureRequest) -> Iterator[dict[str, wukong.Client]]:
    clients: dict[str, wukong.Client] = {}
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(params=sorted(PAIRINGS))
def client(request: pytest.FixtureRequest, _clients: dict[str, wukong.Client]) -> wukong.Client:
    """A client for one pairing, shared by the session; the store must be empty after each test."""
    name = request.param
    if name not in _clients:
        compute, storage = PAIRINGS[name]
        settings = {**compute, **storage, "timeout": 120}
        if storage["storage"] == "redis":
            settings["storage"] = request.getfixturevalue("redis_url")
        _clients[name] = wukong.Client(**settings)
    client = _clients[name]
    yield client
    client.settle()
    assert client.storage_backend.list_keys("wukong/") == [], "a job left keys behind"
