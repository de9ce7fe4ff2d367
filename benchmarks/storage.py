"""Storage micro-benchmark: wukong's store layer beside the raw client library, in one run.

For each store (Redis, sharded Redis, Redis Cluster, memcached, S3 on moto's server), on real servers
this script starts on loopback: put and get of 1 KB, 1 MB and 64 MB objects, and the counter operation
(set a bit, read the count). The raw side is the client library doing the same thing on the same
server and key: redis-py ``SET``/``GET``/``EVAL`` (after uhashring picks the shard, for sharded Redis),
redis-py's cluster client, pymemcache ``set``/``get``/``gets``+``cas``, boto3 ``put_object``/
``get_object``, each with the same timeouts as wukong's store. Rounds alternate wukong and raw;
each figure is the median over rounds of the mean time per operation. Target: wukong's layer adds
at most 10% (ratio <= 1.10).

Memcached's raw client cannot store 64 MB (above its 1 MiB item limit): wukong chunks it, so that row
has no raw figure.

    python benchmarks/storage.py [--stores redis,memcached] [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial

import boto3
import pymemcache
import redis
from redis.cluster import RedisCluster
from uhashring import HashRing

from wukong.backends.storage.base import StorageBackend
from wukong.backends.storage.redis import SET_BIT_AND_COUNT
from wukong.core.backends import create_storage
from wukong.testing import servers

SIZES = {"1KB": 1_000, "1MB": 1_000_000, "64MB": 64_000_000}
# Operations per round: enough that a round of small operations lasts a few tens of milliseconds.
PER_ROUND = {"1KB": 500, "1MB": 20, "64MB": 1, "counter": 500}
# The raw clients get the timeouts wukong's stores use by default: a socket with a timeout costs a
# poll() per read, which is most of a 1 MB memcached get's time (pymemcache reads 4 KB at a time).
REDIS_TIMEOUTS = {"socket_timeout": 60.0, "socket_connect_timeout": 5.0}
S3_PER_ROUND = {"1KB": 50, "1MB": 10, "64MB": 1, "counter": 0}


@dataclass
class Raw:
    """The raw client's version of each operation, on the same server and key."""

    put: Callable[[str, bytes], object]
    get: Callable[[str], object]
    count: Callable[[str, int], object] | None


def raw_redis(client: redis.Redis) -> Raw:
    script = client.register_script(SET_BIT_AND_COUNT)
    return Raw(client.set, client.get, lambda key, bit: script(keys=[key], args=[bit]))


@contextmanager
def stores(names: list[str]) -> Iterator[dict[str, tuple[StorageBackend, Callable[[str], Raw]]]]:
    """Start the servers; yield, per store, wukong's store and a factory of the raw client for a key."""
    with ExitStack() as stack:
        found: dict[str, tuple[StorageBackend, Callable[[str], Raw]]] = {}
        if "redis" in names:
            url = stack.enter_context(servers.redis_server()).url
            raw = raw_redis(stack.enter_context(redis.Redis.from_url(url, **REDIS_TIMEOUTS)))
            found["redis"] = (create_storage(url, {}), lambda key, raw=raw: raw)
        if "redis-sharded" in names:
            urls = [stack.enter_context(servers.redis_server()).url for _ in range(3)]
            store = create_storage("redis-sharded", {"urls": urls})
            clients = {
                url: raw_redis(stack.enter_context(redis.Redis.from_url(url, **REDIS_TIMEOUTS)))
                for url in urls
            }
            ring = HashRing(nodes=urls)  # the raw side hashes the key too, with the same library
            raw = Raw(
                lambda key, value: clients[ring.get_node(key)].put(key, value),
                lambda key: clients[ring.get_node(key)].get(key),
                lambda key, bit: clients[ring.get_node(key)].count(key, bit),
            )
            found["redis-sharded"] = (store, lambda key, raw=raw: raw)
        if "redis-cluster" in names:
            url = stack.enter_context(servers.redis_cluster(3))[0].url
            cluster = RedisCluster.from_url(url, **REDIS_TIMEOUTS)
            stack.callback(cluster.close)
            script = cluster.register_script(SET_BIT_AND_COUNT)
            raw = Raw(cluster.set, cluster.get, lambda key, bit: script(keys=[key], args=[bit]))
            found["redis-cluster"] = (create_storage("redis-cluster", {"url": url}), lambda key, raw=raw: raw)
        if "memcached" in names:
            url = stack.enter_context(servers.memcached_server(4096)).url
            host, port = url.removeprefix("memcached://").split(":")
            client = pymemcache.Client(
                (host, int(port)), default_noreply=False, no_delay=True, timeout=60.0, connect_timeout=5.0
            )
            stack.callback(client.close)

            def count(key: str, bit: int, client: pymemcache.Client = client) -> None:
                value, token = client.gets(key)
                bitmap = bytearray(value or b"")
                bitmap.extend(bytes(max(0, bit // 8 + 1 - len(bitmap))))
                bitmap[bit // 8] |= 1 << (bit % 8)
                if value is None:
                    client.add(key, bytes(bitmap))
                else:
                    client.cas(key, bytes(bitmap), token)

            raw = Raw(client.set, client.get, count)
            found["memcached"] = (create_storage(url, {}), lambda key, raw=raw: raw)
        if "s3" in names:
            endpoint = stack.enter_context(servers.s3_server("wukong-bench")).url
            s3 = boto3.client("s3", endpoint_url=endpoint)
            raw = Raw(
                lambda key, value: s3.put_object(Bucket="wukong-bench", Key=f"bench/{key}", Body=value),
                lambda key: s3.get_object(Bucket="wukong-bench", Key=f"bench/{key}")["Body"].read(),
                None,
            )
            store = create_storage("s3://wukong-bench/bench", {"endpoint_url": endpoint})
            found["s3"] = (store, lambda key, raw=raw: raw)
        try:
            yield found
        finally:
            for store, _ in found.values():
                store.close()


def timed(operation: Callable[[], object], times: int) -> float:
    started = time.perf_counter()
    for _ in range(times):
        operation()
    return (time.perf_counter() - started) / times


def compare(ours: Callable[[], object], theirs: Callable[[], object] | None, rounds: int, times: int):
    """Alternate wukong's operation and the raw one for ``rounds`` rounds of ``times`` each."""
    wukong_times, raw_times = [], []
    for _ in range(rounds):
        wukong_times.append(timed(ours, times))
        if theirs is not None:
            raw_times.append(timed(theirs, times))
    return wukong_times, raw_times


def measure(store: StorageBackend, raw_for: Callable[[str], Raw], rounds: int, per_round: dict) -> list[dict]:
    rows = []
    for label, size in SIZES.items():
        blob = os.urandom(size)
        ours, theirs = f"bench/w/{label}", f"bench/r/{label}"
        raw = raw_for(theirs)
        can_raw = not (store.name == "memcached" and size > 1_000_000)
        times = per_round[label]
        puts = compare(partial(store.put, ours, blob), partial(raw.put, theirs, blob) if can_raw else None,
                       rounds, times)  # fmt: skip
        rows.append(row(f"put {label}", size, *puts))
        gets = compare(partial(store.get, ours), partial(raw.get, theirs) if can_raw else None, rounds, times)
        rows.append(row(f"get {label}", size, *gets))
        store.delete_many([ours, theirs])
    if store.capabilities.atomic_counters:
        # Every operation sets a new bit, as a fan-in does: wukong's bits and the raw side's alike.
        ours_bits, raw_bits = itertools.count(), itertools.count()
        raw = raw_for("bench/r/counter")
        counts = compare(
            lambda: store.set_bit_and_count("bench/w/counter", next(ours_bits)),
            lambda: raw.count("bench/r/counter", next(raw_bits)),
            rounds,
            per_round["counter"],
        )
        rows.append(row("counter", 0, *counts))
        store.delete_many(["bench/w/counter", "bench/r/counter"])
    return rows


def row(operation: str, size: int, wukong_times: list[float], raw_times: list[float]) -> dict:
    ours = statistics.median(wukong_times)
    theirs = statistics.median(raw_times) if raw_times else None
    return {
        "operation": operation,
        "bytes": size,
        "wukong_us": ours * 1e6,
        "raw_us": None if theirs is None else theirs * 1e6,
        "ratio": None if theirs is None else ours / theirs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="redis,redis-sharded,redis-cluster,memcached,s3")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    names = args.stores.split(",")
    results: dict[str, list[dict]] = {}
    with stores(names) as found:
        for name in names:
            store, raw_for = found[name]
            results[name] = measure(store, raw_for, args.rounds, S3_PER_ROUND if name == "s3" else PER_ROUND)

    print("| store | operation | wukong | raw client | wukong / raw |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, rows in results.items():
        for r in rows:
            raw = "—" if r["raw_us"] is None else format_time(r["raw_us"])
            ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(f"| {name} | {r['operation']} | {format_time(r['wukong_us'])} | {raw} | {ratio} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rounds": args.rounds, "results": results}, handle, indent=2)


def format_time(microseconds: float) -> str:
    if microseconds >= 10_000:
        return f"{microseconds / 1000:,.1f} ms"
    return f"{microseconds:,.0f} µs"


if __name__ == "__main__":
    main()
