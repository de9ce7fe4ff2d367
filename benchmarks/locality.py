"""Factor analysis of the big-object optimisations (SoCC'20): each off and on, on two stores.

For SVD2 (``svd_compressed`` k=5 of 8000x8000 in 2000x2000 blocks), GEMM (4000x4000 in 1000x1000)
and the tall-and-skinny SVD (200,000x100 in 10,000-row blocks), runs wukong with every optimisation
off, then each one alone, then all together, on the embedded store (worker processes) and on the
ideal store (threads), in one run. Prints wall time (median of ``--repeat`` after a warm-up), bytes
written and read, objects kept local and reads avoided, and checks every result against Dask's
synchronous scheduler.

Targets: with everything on, bytes written on SVD2 at most a third of everything off, and wall time
on the embedded store within 1.3x of the ideal store.

    python benchmarks/locality.py [--repeat 3] [--workloads svd2,gemm,svd1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from typing import Any

import dask

import wukong
from wukong.bench.engines import one_blas_thread
from wukong.bench.workloads import compute, gemm, same_result, svd_compressed, svd_tall_skinny

WORKLOADS = {
    "svd2": lambda: svd_compressed(8000, 2000),
    "gemm": lambda: gemm(4000, 1000),
    "svd1": lambda: svd_tall_skinny(200_000, 100, 10_000),
}
OFF = {"clustering": False, "delayed_io": False, "locality_cache": False}
SETTINGS = {
    "all off": OFF,
    "clustering": {**OFF, "clustering": True},
    "delayed I/O": {**OFF, "delayed_io": True},
    "cache": {**OFF, "locality_cache": True},
    "all on": {},
}
STORES = {
    "embedded": {"storage": "embedded"},
    "ideal": {"storage": "ideal", "compute_options": {"mode": "threads"}},
}


def measure(client: wukong.Client, built: tuple[Any, ...], expected: Any, repeat: int) -> dict[str, Any]:
    """Warm up, check the result, then time ``repeat`` runs; metrics are the last run's."""
    if not same_result(compute(built, client.get), expected):
        raise AssertionError("wukong's result differs from dask's synchronous scheduler")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        compute(built, client.get)
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), **asdict(client.last_job.metrics.totals)}


def main() -> None:
    """Run every workload x store x setting and print one table per workload."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    one_blas_thread()
    chosen = args.workloads.split(",")
    built = {name: WORKLOADS[name]() for name in chosen}
    expected = {name: compute(built[name], dask.get) for name in chosen}
    results: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in chosen}
    for store, store_settings in STORES.items():
        for setting, locality in SETTINGS.items():
            with wukong.Client(**store_settings, locality=locality) as client:
                for name in chosen:
                    results[name][f"{store} / {setting}"] = measure(
                        client, built[name], expected[name], args.repeat
                    )
    for name in chosen:
        print(f"\n{name}\n")
        print("| store / setting | wall (s) | written (MB) | read (MB) | kept local | reads avoided |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, row in results[name].items():
            written, read = row["data_bytes_written"] / 1e6, row["data_bytes_read"] / 1e6
            print(
                f"| {label} | {row['seconds']:.2f} | {written:,.0f} | {read:,.0f} | "
                f"{row['objects_kept_local']} | {row['reads_avoided']} |"
            )
    if "svd2" in results:
        svd2 = results["svd2"]
        on, off = svd2["embedded / all on"], svd2["embedded / all off"]
        written = on["data_bytes_written"] / off["data_bytes_written"]
        wall = on["seconds"] / svd2["ideal / all on"]["seconds"]
        print(f"\nSVD2, all on: bytes written {written:.2f}x of all off (target <= 0.33); "
              f"embedded wall time {wall:.2f}x of ideal (target <= 1.3)")  # fmt: skip
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
