"""The built-in backends, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from wukong.plugins.hookspecs import hookimpl
from wukong.plugins.registry import BackendEntry


@hookimpl
def wukong_register_compute_backends() -> list[BackendEntry]:
    """Register the local pool (processes or threads)."""
    return [
        BackendEntry(
            name="local",
            target="wukong.backends.compute.local:LocalCompute",
            description="a pool of worker processes (or threads) on this machine; "
            "invocations are fire-and-forget, like asynchronous Lambda invokes",
        ),
    ]


@hookimpl
def wukong_register_storage_backends() -> list[BackendEntry]:
    """Register the embedded store, Redis and the ideal in-memory store."""
    return [
        BackendEntry(
            name="embedded",
            target="wukong.backends.storage.embedded:EmbeddedRedisStorage",
            description="a private redis-server on a Unix socket, started and stopped by the client",
        ),
        BackendEntry(
            name="redis",
            target="wukong.backends.storage.redis:RedisStorage",
            description="a Redis server given by URL",
            url_schemes=("redis", "rediss", "unix"),
            install_hint="pip install redis",
        ),
        BackendEntry(
            name="ideal",
            target="wukong.backends.storage.ideal:IdealStorage",
            description="zero-cost in-memory store for 'ideal storage' experiments (threads only)",
        ),
    ]
