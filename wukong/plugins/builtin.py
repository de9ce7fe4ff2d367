"""The built-in backends, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from wukong.plugins.hookspecs import hookimpl
from wukong.plugins.registry import BackendEntry


@hookimpl
def wukong_register_compute_backends() -> list[BackendEntry]:
    """Register the local pool (processes or threads), AWS Lambda and its simulation."""
    return [
        BackendEntry(
            name="local",
            target="wukong.backends.compute.local:LocalCompute",
            description="a pool of worker processes (or threads) on this machine; "
            "invocations are fire-and-forget, like asynchronous Lambda invokes",
        ),
        BackendEntry(
            name="lambda",
            target="wukong.backends.compute.aws_lambda:LambdaCompute",
            description="asynchronous invocations of an AWS Lambda function (deploy it with "
            "`wukong lambda deploy`)",
            install_hint="pip install boto3",
        ),
        BackendEntry(
            name="simulated-lambda",
            target="wukong.backends.compute.simulated:SimulatedLambda",
            description="thousands of executors as threads, with a model of Lambda's invocation "
            "latency, cold starts, concurrency limit, bandwidth, time limit and duplicates",
        ),
    ]


@hookimpl
def wukong_register_storage_backends() -> list[BackendEntry]:
    """Register the embedded store, Redis (single, sharded, cluster), memcached, S3 and ideal."""
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
            name="redis-sharded",
            target="wukong.backends.storage.sharded_redis:ShardedRedisStorage",
            description="several Redis servers, keys placed by consistent hashing",
            install_hint="pip install redis uhashring",
        ),
        BackendEntry(
            name="redis-cluster",
            target="wukong.backends.storage.redis_cluster:RedisClusterStorage",
            description="a Redis Cluster, through redis-py's cluster client",
            install_hint="pip install redis",
        ),
        BackendEntry(
            name="memcached",
            target="wukong.backends.storage.memcached:MemcachedStorage",
            description="a memcached server; big objects chunked, counters by compare-and-swap",
            url_schemes=("memcached",),
            install_hint="pip install pymemcache",
        ),
        BackendEntry(
            name="s3",
            target="wukong.backends.storage.s3:S3Storage",
            description="an S3 bucket (or S3-compatible server) as a data store, beside a metadata store",
            url_schemes=("s3",),
            install_hint="pip install boto3",
        ),
        BackendEntry(
            name="ideal",
            target="wukong.backends.storage.ideal:IdealStorage",
            description="zero-cost in-memory store for 'ideal storage' experiments (threads only)",
        ),
    ]
