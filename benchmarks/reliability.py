"""Inject each fault many times; count exact results, clear errors, wrong answers, hangs, keys left.

The figures of docs/reliability.md's table. Every run builds a job, injects its fault, and is
classed by what the user gets: the exact answer (equal to Dask's synchronous scheduler's), the
expected error, anything else (a wrong answer or an unexpected error), or nothing within the
watchdog's time (a hang). After each run the client settles and the store is searched for keys of
any job; after the last run of a fault the client closes (its workers, the keys' only writers, stop)
and the store is searched again, so a write that came after a run's check counts too: keys left.
``--busy 3`` starves the CPU with three spinning processes for the whole run, as a busy CI machine
does, so that executors outlive their jobs.

    python benchmarks/reliability.py [--runs 20] [--busy 3] [--json benchmarks/results/reliability.json]

Real servers throughout (redis-server, memcached, wukong's local Lambda Invoke API server); kills
are SIGKILL by pid at random moments.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import dask

import wukong
from wukong.testing.servers import lambda_server, memcached_server, redis_server
from wukong.testing.workloads import layered, nap

WATCHDOG_SECONDS = 90


def _step(value: int) -> int:
    time.sleep(0.05)
    return value + 1


def _chains(length: int = 60) -> tuple[dict, str]:
    graph: dict = {}
    for chain in range(2):
        graph[(chain, 0)] = (_step, chain)
        graph.update({(chain, i): (_step, (chain, i - 1)) for i in range(1, length)})
    graph["end"] = (sum, [(0, length - 1), (1, length - 1)])
    return graph, "end"


def _crash_once(marker: str, value: int) -> int:
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return value * 10


def _crash(value: int) -> int:
    os._exit(3)


def _raise(value: int) -> int:
    raise ValueError(f"bad value {value}")


class Fault:
    """One fault: how to run it once, which error is the clear one, how many runs."""

    def __init__(self, name: str, runs: int, expected: type[BaseException] | None, run: Callable[..., Any]):
        self.name, self.runs, self.expected, self.run = name, runs, expected, run


def _kill_workers(client: wukong.Client, rng: random.Random, kills: int) -> threading.Thread:
    def kill() -> None:
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 0.9))
            pids = client.compute_backend.worker_pids
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def killed_workers(client: wukong.Client, rng: random.Random, **_: Any) -> tuple[Any, Any]:
    graph, root = layered()
    killer = _kill_workers(client, rng, kills=rng.randint(1, 3))
    try:
        return client.get(graph, root), dask.get(graph, root)
    finally:
        killer.join()


def crash_once(client: wukong.Client, rng: random.Random, scratch: str, **_: Any) -> tuple[Any, Any]:
    marker = os.path.join(scratch, f"crashed-{rng.random()}")
    graph = {"x": 4, "y": (_crash_once, marker, "x"), "z": (nap, "y", "x")}
    return client.get(graph, "z"), 45


def _stuck_the_first_time(marker: str, value: int) -> int:
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(60)
    return value * 10


def straggler(client: wukong.Client, rng: random.Random, scratch: str, **_: Any) -> tuple[Any, Any]:
    graph, root = layered(8, 3)
    graph["n", 1, 2] = (_stuck_the_first_time, os.path.join(scratch, f"stuck-{rng.random()}"), ("n", 0, 2))
    expected = dask.get({**graph, ("n", 1, 2): (lambda value: value * 10, ("n", 0, 2))}, root)
    return client.get(graph, root), expected


def crash_always(client: wukong.Client, **_: Any) -> tuple[Any, Any]:
    return client.get({"x": 4, "y": (_crash, "x"), "z": (nap, "y", "x")}, "z"), None


def task_raises(client: wukong.Client, **_: Any) -> tuple[Any, Any]:
    graph, root = layered(8, 3)
    graph["n", 1, 3] = (_raise, ("n", 0, 3))
    return client.get(graph, root), None


def job_timeout(client: wukong.Client, **_: Any) -> tuple[Any, Any]:
    graph, root = _chains(100)  # 5 s of work under a client timeout of 1 s
    return client.get(graph, root), None


def _sleep(value: Any, seconds: float) -> Any:
    time.sleep(seconds)
    return value


def outlived_timeout(client: wukong.Client, **_: Any) -> tuple[Any, Any]:
    graph, root = _chains(60)
    graph[(1, 30)] = (_sleep, (1, 29), 3.0)  # runs on well past the clean-up
    return client.get(graph, root), None


def outlived_failure(client: wukong.Client, **_: Any) -> tuple[Any, Any]:
    graph, root = _chains(60)
    graph[(1, 30)] = (_sleep, (1, 29), 3.0)
    graph["bad"] = (_raise, (0, 5))
    graph["all"] = (sum, [root, "bad"])
    return client.get(graph, "all"), None


def store_restarted(client: wukong.Client, server: Any, rng: random.Random, **_: Any) -> tuple[Any, Any]:
    graph, root = _chains()

    def restart() -> None:
        server.process.kill()
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0.1, 1.0))
        server.process.start()

    restarter = threading.Timer(rng.uniform(0.3, 2.0), restart)
    restarter.start()
    try:
        return client.get(graph, root), dask.get(graph, root)
    finally:
        restarter.join()


def plain(client: wukong.Client, **_: Any) -> tuple[Any, Any]:
    graph, root = layered(16, 4)
    return client.get(graph, root), dask.get(graph, root)


def _classify(fault: Fault, run: Callable[[], tuple[Any, Any]]) -> str:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["values"] = run()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(WATCHDOG_SECONDS)
    if thread.is_alive():
        return "hang"
    if "error" in outcome:
        error = outcome["error"]
        if fault.expected is not None and isinstance(error, fault.expected) and str(error):
            return "clear error"
        return f"other error: {type(error).__name__}: {str(error)[:120]}"
    got, expected = outcome["values"]
    return "exact" if got == expected else "wrong"


@contextmanager
def _client(settings: dict[str, Any]) -> Iterator[wukong.Client]:
    with wukong.Client(**{"timeout": 60, "cleanup_timeout": 5, **settings}) as client:
        yield client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each fault")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the table here")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes that starve the CPU")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    few = max(3, args.runs // 4)
    table: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        for _ in range(args.busy):
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            stack.callback(spinner.wait)
            stack.callback(spinner.kill)
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        redis = stack.enter_context(redis_server())
        memcached = stack.enter_context(memcached_server())
        lambda_endpoint = stack.enter_context(lambda_server("--retries", "2", "--retry-delay", "0.2")).url
        duplicates = stack.enter_context(lambda_server("--duplicates")).url
        local = {"compute_options": {"workers": 2}}
        speculating = {"compute_options": {"workers": 2, "speculate_after": 4, "speculate_min_seconds": 0.5}}
        on_lambda = {"compute": "lambda", "compute_options": {"endpoint_url": lambda_endpoint,
                     "region_name": "us-east-1", "lost_after_seconds": 10}}  # fmt: skip
        outlived_timeout_settings = {**local, "timeout": 1, "cleanup_timeout": 0.5}
        on_duplicates = {"compute": "lambda", "compute_options": {"endpoint_url": duplicates,
                         "region_name": "us-east-1"}}  # fmt: skip
        cases = [
            (Fault("worker killed at random moments", args.runs, None, killed_workers), redis, local),
            (Fault("worker killed at random moments", args.runs, None, killed_workers), memcached, local),
            (Fault("worker killed at random moments", args.runs, None, killed_workers), redis, speculating),
            (Fault("straggler (first run stuck for 60 s)", few, None, straggler), redis, speculating),
            (Fault("task kills its worker once", few, None, crash_once), redis, local),
            (Fault("task kills its worker every time", few, wukong.ComputeError, crash_always), redis, local),
            (Fault("Lambda executor exits once (platform retry)", few, None, crash_once), redis, on_lambda),
            (Fault("repeated deliveries (every event twice)", few, None, plain), redis, on_duplicates),
            (Fault("task raises", few, ValueError, task_raises), redis, local),
            (Fault("job timeout", few, wukong.JobTimeoutError, job_timeout), redis, {**local, "timeout": 1}),
            (Fault("job timeout, a task runs on past the clean-up", few, wukong.JobTimeoutError,
                   outlived_timeout), redis, outlived_timeout_settings),
            (Fault("job timeout, a task runs on past the clean-up", few, wukong.JobTimeoutError,
                   outlived_timeout), memcached, outlived_timeout_settings),
            (Fault("task raises, a sibling runs on past the clean-up", few, ValueError, outlived_failure),
             redis, {**local, "cleanup_timeout": 0.5}),
            (Fault("task raises, a sibling runs on past the clean-up", few, ValueError, outlived_failure),
             memcached, {**local, "cleanup_timeout": 0.5}),
            (Fault("store restarted empty mid-job", args.runs, wukong.StorageError, store_restarted), redis,
             local),
            (Fault("store restarted empty mid-job", few, wukong.StorageError, store_restarted), memcached,
             local),
        ]  # fmt: skip
        for fault, server, settings in cases:
            store = server.url.split(":")[0]
            compute = settings.get("compute", "local")
            if "speculate_after" in settings.get("compute_options", {}):
                compute += " (speculating)"
            counts: Counter[str] = Counter()
            keys_left = 0
            label = f"{fault.name} [{compute} x {store}]"
            with _client({"storage": server.url, **settings}) as client:
                context = {"rng": rng, "scratch": scratch, "server": server}
                for _ in range(fault.runs):
                    kind = _classify(fault, functools.partial(fault.run, client, **context))
                    counts[kind] += 1
                    client.settle()
                    left = client.stores.list_keys("wukong/")
                    keys_left += bool(left)
                    if left:
                        client.stores.delete(left, left)
                    print(f"{label}: {kind}{' (keys left)' if left else ''}", flush=True)
            # The client is closed: its workers, the only writers left, have stopped. Look again.
            with wukong.Client(storage=server.url, compute_options={"mode": "threads"}) as probe:
                late = probe.stores.list_keys("wukong/")
                if late:
                    print(f"{label}: {len(late)} key(s) written after the runs' checks", flush=True)
                    probe.stores.delete(late, late)
                keys_left += bool(late)
            row = {"fault": fault.name, "compute": compute, "store": store, "runs": fault.runs,
                   "exact": counts.pop("exact", 0), "clear errors": counts.pop("clear error", 0),
                   "hangs": counts.pop("hang", 0), "wrong": counts.pop("wrong", 0),
                   "other": dict(counts), "runs with keys left": keys_left}  # fmt: skip
            table[label] = row
    print()
    print("| fault | compute x store | runs | exact | clear errors | wrong or other | hangs | keys left |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in table.values():
        other = row["wrong"] + sum(row["other"].values())
        cells = [row["fault"], f"{row['compute']} x {row['store']}", row["runs"], row["exact"],
                 row["clear errors"], other, row["hangs"], row["runs with keys left"]]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(list(table.values()), out, indent=1)


if __name__ == "__main__":
    main()
