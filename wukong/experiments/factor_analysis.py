"""SoCC'20 factor analysis: each big-object optimisation off and on, on a real and an ideal store.

For SVD2 (``svd_compressed`` k=5 of 8,000 x 8,000 in 2,000 x 2,000 blocks), GEMM (4,000 x 4,000 in
1,000 x 1,000) and the tall-and-skinny SVD (200,000 x 100 in 10,000-row blocks): wukong with every
optimisation off, each one alone, and all together, on the embedded store (worker processes) and on
the ideal store (threads). Bytes written and read, objects kept local and reads avoided come from
each job's metrics.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import dask

import wukong
from wukong.bench.engines import one_blas_thread
from wukong.bench.workloads import compute, gemm, same_result, svd_compressed, svd_tall_skinny
from wukong.experiments.engines import timed
from wukong.experiments.outcome import Claim, Outcome, ratio

WORKLOADS = {
    "svd2": lambda quick: svd_compressed(4000, 1000) if quick else svd_compressed(8000, 2000),
    "gemm": lambda quick: gemm(2000, 500) if quick else gemm(4000, 1000),
    "svd1": lambda quick: (
        svd_tall_skinny(50_000, 100, 5_000) if quick else svd_tall_skinny(200_000, 100, 10_000)
    ),
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
    """Check the result once, then time ``repeat`` runs; the metrics are the last run's."""
    seconds = timed(partial(compute, built, client.get), expected, repeat, same=same_result)
    totals = client.last_job.metrics.totals
    return {
        "seconds": seconds,
        "written": totals.data_bytes_written,
        "read": totals.data_bytes_read,
        "kept local": totals.objects_kept_local,
        "reads avoided": totals.reads_avoided,
    }


def run(quick: bool = False, repeat: int = 3, workloads: str = "svd2,gemm,svd1") -> Outcome:
    """Run every workload x store x setting."""
    one_blas_thread()
    chosen = workloads.split(",")
    columns = [f"{store} / {setting}" for store in STORES for setting in SETTINGS]
    outcome = Outcome("factor-analysis", "Factor analysis of the big-object optimisations", chosen, columns)
    built = {name: WORKLOADS[name](quick) for name in chosen}
    expected = {name: compute(built[name], dask.get) for name in chosen}
    found: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in chosen}
    for store, store_settings in STORES.items():
        for setting, locality in SETTINGS.items():
            with wukong.Client(**store_settings, locality=locality) as client:
                for name in chosen:
                    found[name][f"{store} / {setting}"] = measure(client, built[name], expected[name], repeat)
    for name in chosen:
        outcome.seconds[name] = {column: found[name][column]["seconds"] for column in columns}
        for column in columns:
            row = found[name][column]
            outcome.notes.append(
                f"{name} {column}: written {row['written'] / 1e6:,.0f} MB, read {row['read'] / 1e6:,.0f} MB, "
                f"kept local {row['kept local']}, reads avoided {row['reads avoided']}"
            )
    if "svd2" in chosen:
        on, off = found["svd2"]["embedded / all on"], found["svd2"]["embedded / all off"]
        ideal = found["svd2"]["ideal / all on"]
        outcome.claims += [
            Claim(
                "clustering and delayed I/O cut the bytes written (SVD2)",
                f"all on / all off = {on['written'] / max(off['written'], 1):.2f} (target <= 0.33)",
                on["written"] <= off["written"] / 3,
            ),
            Claim(
                "the optimisations make SVD2 faster",
                f"all off / all on = {ratio(off['seconds'], on['seconds'])}",
                on["seconds"] < off["seconds"],
            ),
            Claim(
                "with them, a real store comes close to an ideal one (SVD2)",
                f"embedded / ideal = {ratio(on['seconds'], ideal['seconds'])} (target <= 1.3x)",
                on["seconds"] <= 1.3 * ideal["seconds"],
            ),
        ]
    return outcome
