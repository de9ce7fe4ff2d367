"""End to end at scale: tree reductions of 10^4 to 10^6 tasks on wukong and on Dask's engines.

Every node of the graph is a task (``operator.pos`` leaves, ``operator.add`` above), so the time is
all per-task overhead. Each engine is started once and warmed up on a small graph; each size runs
once per engine, in one process, and the answer is checked against the arithmetic sum. The client's
peak resident memory is reported for each run: the graph is built, then the peak is reset (Linux's
``clear_refs``), so it counts the graph (a dict of tuples, the user's) and what the engine adds.

``python -m wukong.bench.run_scale --sizes 16383,131071,1048575 --engines "wukong embedded,dask
processes" --out DIR`` writes ``scale.json`` and a log-log plot ``scale.png`` beside the planning
sweep of :mod:`wukong.bench.partition_scale`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from typing import Any

from wukong.bench.engines import one_blas_thread, started
from wukong.bench.partition_scale import measure
from wukong.testing.workloads import tree_reduction


def _reset_peak() -> None:
    """Start this process's peak resident memory afresh (Linux: ``clear_refs``), where it can."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def _peak_megabytes() -> float:
    """The peak resident memory of this process since the last reset (else since it started)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engine(engine: str, sizes: list[int], workers: int) -> list[dict[str, Any]]:
    """Time one run of each tree reduction of ``sizes`` tasks on ``engine``."""
    rows = []
    with started(engine, workers) as running:
        warm, root = tree_reduction(64, leaf_tasks=True)
        running.get(warm, root)
        running.settle()
        for size in sizes:
            leaves = (size + 1) // 2
            graph, root = tree_reduction(leaves, leaf_tasks=True)
            _reset_peak()
            began = time.perf_counter()
            value = running.get(graph, root)
            seconds = time.perf_counter() - began
            running.settle()
            if value != leaves * (leaves - 1) // 2:
                raise AssertionError(f"{engine} computed {value!r} for {size:,} tasks")
            peak = _peak_megabytes()
            rows.append({"engine": engine, "tasks": len(graph), "seconds": seconds, "peak_mb": peak})
            print(f"{engine}: {len(graph):,} tasks in {seconds:.1f} s", flush=True)
    return rows


def write_plot(path: str, runs: list[dict[str, Any]], planning: list[dict[str, Any]]) -> None:
    """Log-log: seconds against tasks, end to end per engine, and planning beside ``dask.order``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for engine in dict.fromkeys(row["engine"] for row in runs):
        mine = [row for row in runs if row["engine"] == engine]
        seconds = [r["seconds"] for r in mine]
        axes.plot([r["tasks"] for r in mine], seconds, "o-", label=f"{engine}: end to end")
    tasks = [row["tasks"] for row in planning]
    axes.plot(tasks, [r["wukong_seconds"] for r in planning], "s--", label="wukong: planning, every page")
    first = [r["wukong_first_invocation_seconds"] for r in planning]
    axes.plot(tasks, first, "v:", label="wukong: to the first invocation")
    axes.plot(tasks, [r["dask_order_seconds"] for r in planning], "^--", label="dask.order")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("tasks (tree reduction, every node a task)")
    axes.set_ylabel("seconds")
    axes.legend(fontsize="small")
    axes.grid(True, which="both", linewidth=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    """Run the sweep; write ``scale.json`` and ``scale.png``; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16383,131071,1048575")
    parser.add_argument("--engines", default="wukong embedded,dask processes")
    parser.add_argument("--largest", default="", help="engine=tasks: the largest size to run there")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    one_blas_thread()
    sizes = [int(size) for size in args.sizes.split(",")]
    largest = dict(item.split("=") for item in args.largest.split(",") if item)
    runs = []
    for engine in (name.strip() for name in args.engines.split(",")):
        cap = int(largest.get(engine, max(sizes)))
        runs += run_engine(engine, [size for size in sizes if size <= cap], args.workers)
    planning = [measure((size + 1) // 2, "tree") for size in sizes]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scale.json"), "w") as handle:
        json.dump({"runs": runs, "planning": planning}, handle, indent=2)
    write_plot(os.path.join(args.out, "scale.png"), runs, planning)
    engines = list(dict.fromkeys(row["engine"] for row in runs))
    timed = {(row["engine"], row["tasks"]): row for row in runs}
    planning_columns = "wukong to first invocation s | wukong planning s | dask.order s | planning B/task"
    print(f"| tasks | {planning_columns} | " + " | ".join(
        f"{engine} s (peak MB)" for engine in engines
    ) + " |")  # fmt: skip
    print("| ---: " * (5 + len(engines)) + "|")
    for row in planning:
        cells = []
        for engine in engines:
            run = timed.get((engine, row["tasks"]))
            cells.append("not run" if run is None else f"{run['seconds']:.1f} ({run['peak_mb']:,.0f})")
        print(
            f"| {row['tasks']:,} | {row['wukong_first_invocation_seconds']:.2f} | "
            f"{row['wukong_seconds']:.2f} | {row['dask_order_seconds']:.2f} | "
            f"{row['wukong_peak_bytes_per_task']:,.0f} | " + " | ".join(cells) + " |"
        )


if __name__ == "__main__":
    main()
