"""What task records cost: the overhead probe (TR-8192) with monitoring on and off, in one run.

Two clients on the embedded default, one with task records and executor log lines on (the
default) and one with both off, take turns on a tree reduction of 8,192 numbers (8,191 no-op
additions: per-task overhead and nothing else), in alternating order so that drift in the
machine's speed falls on both. Dask's processes scheduler runs the same graph in the same run for
scale. Prints medians and the on/off ratio; the target is at most 1.05.

    python benchmarks/monitoring.py [--repeat 15] [--leaves 8192] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import dask

import wukong
from wukong.bench.engines import started
from wukong.testing.workloads import tree_reduction

OFF = {"task_records": False, "log_lines": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--leaves", type=int, default=8192)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    graph, root = tree_reduction(args.leaves)
    expected = dask.get(graph, root)
    times: dict[str, list[float]] = {"on": [], "off": [], "dask processes": []}
    with wukong.Client() as on, wukong.Client(monitoring=OFF) as off:
        clients = {"on": on, "off": off}
        for client in clients.values():
            assert client.get(graph, root) == expected  # warm up the pools
        for run in range(args.repeat):
            order = ["on", "off"] if run % 2 else ["off", "on"]
            for name in order:
                begun = time.perf_counter()
                assert clients[name].get(graph, root) == expected
                times[name].append(time.perf_counter() - begun)
        records = len(on.last_job.metrics.tasks)
    with started("dask processes", workers=2) as dask_processes:
        dask_processes.get(graph, root)
        for _ in range(args.repeat):
            begun = time.perf_counter()
            assert dask_processes.get(graph, root) == expected
            times["dask processes"].append(time.perf_counter() - begun)

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["on"] / medians["off"]
    print(f"TR-{args.leaves} ({args.leaves - 1} tasks), median of {args.repeat}, {records} task records")
    for name, seconds in medians.items():
        print(f"  {name:15} {seconds:7.3f} s  ({seconds / medians['dask processes']:.2f}x Dask processes)")
    print(f"  records on / off: {ratio:.3f} (target <= 1.05)")
    if args.json:
        result: dict[str, Any] = {"leaves": args.leaves, "repeat": args.repeat, "seconds": times}
        result.update(medians=medians, ratio_on_off=ratio)
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)


if __name__ == "__main__":
    main()
