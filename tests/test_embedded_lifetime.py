"""The embedded store dies with its client, however the client ends (SIGKILL and segfault included).

Real processes: a child Python process creates a client (the embedded store and a local pool of
worker processes), writes down the processes it started, and dies; the test then waits for every
one of them to end and for the store's directory to go. Leftovers of a failed run are killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from wukong.backends.storage.embedded import EmbeddedRedisStorage

DEADLINE_SECONDS = 10.0

# The client: written to a file and run as a script, so that spawned workers can import its main
# module. It writes what it started to info.json, then dies as argv[2] says.
CLIENT = """
import ctypes, json, os, resource, signal, sys, time

import psutil

import wukong
from wukong.backends.storage.embedded import EmbeddedRedisStorage


def main() -> None:
    info_path, death, start_method = sys.argv[1:4]
    client = wukong.Client(
        compute="local",
        storage="embedded",
        compute_options={"workers": 2, "start_method": start_method},
    )
    store = client.stores.metadata
    assert isinstance(store, EmbeddedRedisStorage), store
    workers = client.compute_backend.worker_pids
    assert len(workers) == 2, workers
    # Wait until every worker has asked for work: then it sits in its wait on the dispatcher's pipe
    # (the state a client's death must end), not in its start.
    deadline = time.monotonic() + 120
    while not all(worker.ready for worker in client.compute_backend._pool._workers):
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.05)
    me = psutil.Process()
    info = {
        "server": store.server_pid,
        "directory": store.directory,
        "workers": workers,
        # Every process the client started (server, watchdog, workers, resource tracker), with its
        # start time, so that a pid reused later is not taken for a survivor.
        "descendants": [
            [process.pid, process.create_time(), " ".join(process.cmdline())[:120]]
            for process in me.children(recursive=True)
        ],
    }
    with open(info_path + ".tmp", "w") as handle:
        json.dump(info, handle)
    os.rename(info_path + ".tmp", info_path)
    if death == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        ctypes.string_at(0)  # a real segfault: reading address 0
    raise AssertionError("still alive")


if __name__ == "__main__":
    main()
"""


def _running(pid: int, created: float | None = None) -> bool:
    """Whether ``pid`` names a live process (a zombie is dead; so is a process that reused the pid)."""
    try:
        process = psutil.Process(pid)
        if created is not None and abs(process.create_time() - created) > 0.01:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _run_client(
    tmp_path: Path, death: str, start_method: str
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run the client script until it dies; return it and what it wrote down."""
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    info_path = tmp_path / "info.json"
    log_path = tmp_path / "client.log"
    with open(log_path, "w") as log:
        # Output to a file, not a pipe: a surviving worker would hold a pipe open, and the test
        # would wait on it rather than fail.
        process = subprocess.Popen(
            [sys.executable, str(script), str(info_path), death, start_method],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            code = process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    output = log_path.read_text(errors="replace")
    assert info_path.exists(), f"the client died before it wrote down its processes:\n{output}"
    info = json.loads(info_path.read_text())
    return subprocess.CompletedProcess(process.args, code, output), info


def _survivors(info: Any) -> dict[str, Any]:
    """What the dead client left behind: live processes of its own, its server's directory."""
    created = {pid: started for pid, started, _ in info["descendants"]}
    left: dict[str, Any] = {}
    if _running(info["server"], created.get(info["server"])):
        left["server"] = info["server"]
    workers = [pid for pid in info["workers"] if _running(pid, created.get(pid))]
    if workers:
        left["workers"] = workers
    others = [[pid, command] for pid, started, command in info["descendants"] if _running(pid, started)]
    if others:
        left["processes"] = others
    if os.path.exists(info["directory"]):
        left["directory"] = info["directory"]
    return left


def _clean_up(info: Any) -> None:
    """Kill what a failed run left, so one failure does not leak processes into the session."""
    for pid, created, _ in info["descendants"]:
        if _running(pid, created):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(info["directory"], ignore_errors=True)


@pytest.mark.parametrize(
    ("death", "start_method", "exit_code"),
    [
        ("sigkill", "spawn", -signal.SIGKILL),
        ("segfault", "spawn", -signal.SIGSEGV),
        ("sigkill", "fork", -signal.SIGKILL),
    ],
)
def test_nothing_outlives_a_client_that_dies(tmp_path: Path, death: str, start_method: str, exit_code: int):
    client, info = _run_client(tmp_path, death, start_method)
    try:
        assert client.returncode == exit_code, client.stdout
        # The client did start what the test then waits for.
        pids = {pid for pid, _, _ in info["descendants"]}
        assert info["server"] in pids and set(info["workers"]) <= pids, info
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (left := _survivors(info)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"left {DEADLINE_SECONDS:.0f} s after the client died ({death}): {left}"
    finally:
        _clean_up(info)


def test_close_stops_the_server_and_the_watchdog_once():
    me = psutil.Process()
    before = {process.pid for process in me.children()}
    store = EmbeddedRedisStorage()
    started = [process for process in me.children() if process.pid not in before]
    assert store.server_pid in {process.pid for process in started}
    assert len(started) == 2, [process.cmdline() for process in started]  # the server, the watchdog
    directory = store.directory
    store.close()
    store.close()
    assert store.server_pid is None
    assert not os.path.exists(directory)
    # Reaped, not zombies: close() waits for both.
    assert not {process.pid for process in me.children()} & {process.pid for process in started}


def test_a_forked_child_does_not_stop_the_server():
    store = EmbeddedRedisStorage()
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child
            store.close()  # a copy of the store: it owns nothing
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.server_pid is not None and _running(store.server_pid)
        assert os.path.exists(store.directory)
        store.put("after the fork", b"still here")
        assert store.get("after the fork") == b"still here"
    finally:
        store.close()
