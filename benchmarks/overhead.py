"""Per-task overhead probe: a tree reduction of 8,192 numbers (16,383 tiny tasks), side by side.

Engines, in one run: wukong's embedded default (local processes + embedded Redis), Dask's
``processes`` scheduler with a warm pool, and dask.distributed ``LocalCluster(n_workers=2,
threads_per_worker=1)`` started beforehand. Each engine gets one warm-up run, then the median of
``--repeat`` runs (min and max shown). Results are checked against Dask's synchronous scheduler.

    python benchmarks/overhead.py [--leaves 8192] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import platform
import statistics
import time

import dask

import wukong
from wukong.testing.workloads import tree_reduction


def measure(run, repeat):
    run()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return result, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"

    graph, root = tree_reduction(args.leaves)
    tasks = len(graph)
    expected = dask.get(graph, root)
    engines = {}

    with wukong.Client() as client:
        engines["wukong embedded"] = lambda: client.get(graph, root)
        results = {"wukong embedded": measure(engines["wukong embedded"], args.repeat)}

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(os.cpu_count(), mp_context=context) as pool:
        results["dask processes (warm pool)"] = measure(
            lambda: dask.multiprocessing.get(graph, root, pool=pool),
            args.repeat,
        )

    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as dclient,
    ):

        def distributed_run():
            value = dclient.get(graph, root)
            while dclient.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
                time.sleep(0.01)  # the cluster must forget the run, or it serves the next from memory
            return value

        results["dask.distributed LocalCluster(2x1)"] = measure(distributed_run, args.repeat)

    print(f"# per-task overhead probe: tree reduction of {args.leaves} numbers = {tasks} tasks")
    print(
        f"# Python {platform.python_version()}, {os.cpu_count()} cores, dask {dask.__version__}, "
        f"wukong {wukong.__version__}; 1 BLAS thread per worker"
    )
    reference = {name: statistics.median(times) for name, (_, times) in results.items()}
    best_dask = min(v for k, v in reference.items() if not k.startswith("wukong"))
    print(f"{'engine':<36} {'median s':>9} {'min':>7} {'max':>7} {'tasks/s':>9} {'x wukong':>9}")
    for name, (value, times) in results.items():
        assert value == expected, f"{name} computed {value}, expected {expected}"
        median = statistics.median(times)
        ratio = reference["wukong embedded"] / median
        print(
            f"{name:<36} {median:9.3f} {min(times):7.3f} {max(times):7.3f} {tasks / median:9.0f} {ratio:9.2f}"
        )
    print(f"wukong / best Dask engine: {reference['wukong embedded'] / best_dask:.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"tasks": tasks, "seconds": {k: t for k, (_, t) in results.items()}},
                handle,
                indent=1,
            )


if __name__ == "__main__":
    main()
