"""Real servers for tests and benchmarks, started on free loopback ports and stopped afterwards.

Each is a process run by mirakuru (from the ``test`` extra), which waits until the port accepts
connections: redis-server and memcached from Debian's packages (``apt-get install redis-server
memcached``), a Redis Cluster of redis-servers, moto's server (a real HTTP endpoint for S3, and for
Lambda's and IAM's control plane), and wukong's local Lambda Invoke API server.
Plugin authors can start the same servers for their own conformance runs.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import boto3
import redis
from mirakuru import TCPExecutor

FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "wukong-test",
    "AWS_SECRET_ACCESS_KEY": "wukong-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_port() -> int:
    """A free port ``p`` whose cluster bus port ``p + 10000`` is free too, below the ephemeral range."""
    while True:
        port = random.randrange(20_000, 30_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port


def _executable(name: str) -> str:
    # A console script of this environment (moto_server) may not be on PATH yet (pyenv's shims).
    path = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    if path is None:
        raise RuntimeError(
            f"{name} is not installed (apt-get install redis-server memcached; pip install moto[server])"
        )
    return path


def _start(command: list[str], port: int, environment: dict[str, str] | None = None) -> TCPExecutor:
    process = TCPExecutor(command, host="127.0.0.1", port=port, timeout=30, envvars=environment,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    process.start()
    return process


@dataclass
class Server:
    """A running server: its address, and the process to stop or restart it (to test failures)."""

    url: str
    process: TCPExecutor


@contextmanager
def redis_server(*extra: str, port: int | None = None) -> Iterator[Server]:
    """A redis-server on a free loopback port (or ``port``), persistence off."""
    port = port or free_port()
    directory = tempfile.mkdtemp(prefix="wukong-test-redis-")
    command = [_executable("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", directory, *extra]  # fmt: skip
    process = _start(command, port)
    try:
        yield Server(f"redis://127.0.0.1:{port}/0", process)
    finally:
        process.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def memcached_server(memory_mb: int = 1024) -> Iterator[Server]:
    """A memcached on a free loopback port that refuses writes when full instead of evicting (-M)."""
    port = free_port()
    command = [_executable("memcached"), "-l", "127.0.0.1", "-p", str(port), "-U", "0",
               "-m", str(memory_mb), "-M"]  # fmt: skip
    if os.geteuid() == 0:
        command += ["-u", "nobody"]  # memcached will not run as root
    process = _start(command, port)
    try:
        yield Server(f"memcached://127.0.0.1:{port}", process)
    finally:
        process.stop()


@contextmanager
def redis_cluster(nodes: int = 3) -> Iterator[list[Server]]:
    """A Redis Cluster of ``nodes`` primaries on loopback, the 16384 slots split evenly."""
    with ExitStack() as stack:
        servers = []
        for _ in range(nodes):
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="wukong-test-cluster-"))
            servers.append(stack.enter_context(redis_server(
                "--cluster-enabled", "yes", "--cluster-config-file", f"{directory}/nodes.conf",
                "--cluster-node-timeout", "5000", port=cluster_port(),
            )))  # fmt: skip
        clients = [stack.enter_context(redis.Redis.from_url(server.url)) for server in servers]
        for index, client in enumerate(clients):
            client.execute_command(
                "CLUSTER ADDSLOTS", *range(index * 16384 // nodes, (index + 1) * 16384 // nodes)
            )
        first_port = int(servers[0].url.rsplit(":", 1)[1].split("/")[0])
        for client in clients[1:]:
            client.execute_command("CLUSTER MEET", "127.0.0.1", first_port)
        deadline = time.monotonic() + 30
        while not all(_cluster_ready(client, nodes) for client in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not form within 30 s")
            time.sleep(0.05)
        yield servers


def _cluster_ready(client: redis.Redis, nodes: int) -> bool:
    info = client.cluster("INFO")
    return info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == nodes


@contextmanager
def s3_server(bucket: str = "wukong-test") -> Iterator[Server]:
    """Moto's S3 server on a free loopback port, with ``bucket`` created; yields its endpoint URL.

    Credentials are fake ones set in the environment, so executors in worker processes, which
    inherit it, find them through the normal AWS chain.
    """
    os.environ.update(FAKE_AWS_CREDENTIALS)
    port = free_port()
    command = [_executable("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    # The same server answers Lambda's and IAM's control plane; AWS's managed policies (the
    # Lambda execution role's) exist there only when asked for.
    process = _start(command, port, {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"})
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        yield Server(endpoint, process)
    finally:
        process.stop()


@contextmanager
def lambda_server(*options: str) -> Iterator[Server]:
    """Wukong's local Lambda Invoke API server on a free loopback port; yields its endpoint URL.

    ``options`` are its command-line options (``--duplicates``, ``--concurrency 4``; see
    :mod:`wukong.testing.lambda_server`). Fake AWS credentials are set in the environment, as boto3
    signs every request even to a local endpoint.
    """
    os.environ.update(FAKE_AWS_CREDENTIALS)
    port = free_port()
    command = [sys.executable, "-m", "wukong.testing.lambda_server", "--port", str(port), *options]
    process = _start(command, port)
    try:
        yield Server(f"http://127.0.0.1:{port}", process)
    finally:
        process.stop()
