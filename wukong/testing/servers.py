"""Real servers for tests and benchmarks, started on free loopback ports and stopped afterwards.

Each is a process run by mirakuru (from the ``test`` extra), which waits until the port accepts
connections: redis-server and memcached from Debian's packages (``apt-get install redis-server
memcached``), a Redis Cluster of redis-servers, moto's server (a real HTTP endpoint for S3, and for
Lambda's and IAM's control plane), wukong's local Lambda Invoke API server, and ministack (an
independent AWS emulator whose Lambda runs deployed packages, with IAM enforced).
Plugin authors can start the same servers for their own conformance runs.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import redis
from mirakuru import TCPExecutor
from mirakuru.exceptions import ProcessFinishedWithError

from wukong.backends.compute.environment import (
    STAMP_VARIABLE,
    encode_stamp,
    executor_environment,
    version_stamp,
)

# ``test`` is the key ministack takes for its account's root (moto takes any).
FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
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


def _stop(process: TCPExecutor) -> None:
    """Stop a server; one that something killed outright (SIGKILL) is a warning, not an error.

    A busy machine once saw the Lambda stand-in end with SIGKILL at the session's end, after every
    test that used it had passed; a server's end is not what the tests check, but it stays visible.
    """
    try:
        process.stop()
    except ProcessFinishedWithError as error:
        if error.exit_code != -signal.SIGKILL:
            raise
        warnings.warn(f"{process.command} was killed (SIGKILL) before it was stopped", stacklevel=2)


@dataclass
class Server:
    """A running server: its address, and the process to stop or restart it (to test failures)."""

    url: str
    process: TCPExecutor | subprocess.Popen


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
        _stop(process)
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
        _stop(process)


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
        _stop(process)


@contextmanager
def lambda_server(*options: str) -> Iterator[Server]:
    """Wukong's local Lambda Invoke API server on a free loopback port; yields its endpoint URL.

    ``options`` are its command-line options (``--duplicates``, ``--concurrency 4``; see
    :mod:`wukong.testing.lambda_server`). Fake AWS credentials are set in the environment, as boto3
    signs every request even to a local endpoint.
    """
    os.environ.update(FAKE_AWS_CREDENTIALS)
    port = free_port()
    # The function's environment as `wukong lambda deploy` sets it: the executors' hash seed, and
    # the versions it was built with (this environment's, which its workers run).
    deployed = {**executor_environment(), STAMP_VARIABLE: encode_stamp(version_stamp())}
    variables = [f"--env={name}={value}" for name, value in deployed.items()]
    command = [sys.executable, "-m", "wukong.testing.lambda_server", "--port", str(port), *variables]
    command += options
    process = _start(command, port)
    try:
        yield Server(f"http://127.0.0.1:{port}", process)
    finally:
        _stop(process)


MINISTACK_VERSION = "1.5.33"
# AWS's Python runtimes come with boto3; ministack runs handlers with its own interpreter, which has
# only the botocore it pins, so its environment gets the boto3 of that botocore.
MINISTACK_BOTO3 = "boto3==1.43.106"


def ministack_environment() -> Path:
    """A virtual environment with ministack (pinned) and boto3 and nothing of wukong's; made once.

    It lives in ``$WUKONG_MINISTACK_HOME`` (default ``~/.cache/wukong/ministack-<version>``). It holds
    neither wukong nor its dependencies, so a function deployed there runs only what its package
    carries, as on AWS.
    """
    default = Path.home() / ".cache" / "wukong" / f"ministack-{MINISTACK_VERSION}"
    home = Path(os.environ.get("WUKONG_MINISTACK_HOME", default))
    if not (home / "bin" / "ministack").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
        install = [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*install, f"ministack=={MINISTACK_VERSION}", MINISTACK_BOTO3], check=True)
    return home


@contextmanager
def ministack_server(concurrency: int = 4) -> Iterator[Server]:
    """ministack, an independent AWS emulator, on a free loopback port with IAM enforced.

    Its Lambda runs handlers in processes of its own environment (see :func:`ministack_environment`),
    at most ``concurrency`` at once (by default its cap grows with this machine's memory). It starts
    with a clean environment (functions inherit the server's), and stops by its process group,
    functions included. Requests signed with the key ``test`` act as the account's root.
    """
    os.environ.update(FAKE_AWS_CREDENTIALS)  # the key "test": this process acts as the account's root
    home = ministack_environment()
    port = free_port()
    scratch = tempfile.mkdtemp(prefix="wukong-test-ministack-")
    environment = {
        "PATH": f"{home / 'bin'}:/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": scratch,
        "GATEWAY_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "AUTH": "true",
        "SERVICES": "lambda,iam,sts,s3,logs",
        "LAMBDA_ACCOUNT_CONCURRENCY": str(concurrency),
        # AWS keeps retrying an asynchronous event that was throttled, for up to six hours; ministack
        # retries it as it retries a failed one (MaximumRetryAttempts), so retries come soon.
        "LAMBDA_ASYNC_RETRY_BASE_SECONDS": "0.5",
        "LAMBDA_ASYNC_RETRY_MAX_SECONDS": "2",
    }
    log = open(Path(scratch) / "server.log", "wb")  # noqa: SIM115 (closed below, with the server)
    process = subprocess.Popen(
        [str(home / "bin" / "ministack")], env=environment, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield Server(url, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # function processes that outlived the server
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ministack exited at start with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_ministack/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"ministack did not answer at {url} within {timeout:.0f} s")
