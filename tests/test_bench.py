"""`wukong bench --quick` still works end to end: every engine, each kind of workload, table, JSON and PNG.

No timing is asserted here: speed is what the benchmark reports, not what tests check. One workload
of each kind runs (a dict graph, arrays, a dataframe shuffle, a persist) on every engine, which
keeps the test to a minute on two cores; `wukong bench --quick` runs them all.
"""

from __future__ import annotations

import json
import subprocess
import sys

from wukong.bench.engines import ENGINES
from wukong.bench.workloads import workloads

KINDS = ("TR-128 0ms", "SVD2", "DF-GROUPBY", "ARRAY-PERSIST")


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m`` with ``args``, which must succeed; its output, for the test to read."""
    completed = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


def test_quick_benchmark_runs_every_engine_and_writes_its_report(tmp_path):
    completed = _run_module(
        "wukong.cli", "bench", "--quick", "--repeat", "1", "--out", str(tmp_path),
        "--workloads", ",".join(KINDS),
    )  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    names = [workload.name for workload in workloads(quick=True) if workload.name in KINDS]
    assert len(names) == len(KINDS)
    timed = {(t["workload"], t["engine"]) for t in results["timings"]}
    assert timed == {(workload, engine) for workload in names for engine in ENGINES}
    assert all(t["ratio_to_best_dask"] > 0 for t in results["timings"])
    assert results["machine"]["blas_threads_per_worker"] == 1
    assert results["partition"]["tasks"] == 2 * 4096 - 1
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG")
    assert "| workload |" in completed.stdout and "dask.order" in completed.stdout


def test_the_scale_sweep_runs_each_size_on_each_engine_and_plots_it(tmp_path):
    completed = _run_module(
        "wukong.bench.run_scale", "--sizes", "63,255", "--engines",
        "wukong ideal (threads),wukong simulated-lambda,dask sync", "--largest", "dask sync=63",
        "--out", str(tmp_path),
    )  # fmt: skip
    results = json.loads((tmp_path / "scale.json").read_text())
    ran = {(run["engine"], run["tasks"]) for run in results["runs"]}
    wukong = ("wukong ideal (threads)", "wukong simulated-lambda")
    assert ran == {(engine, size) for engine in wukong for size in (63, 255)} | {("dask sync", 63)}
    assert [row["tasks"] for row in results["planning"]] == [63, 255]
    assert all(row["wukong_page_bytes_per_task"] > 0 for row in results["planning"])
    assert all(row["wukong_first_invocation_seconds"] > 0 for row in results["planning"])
    assert "| 255 |" in completed.stdout and "not run" in completed.stdout
    assert (tmp_path / "scale.png").read_bytes().startswith(b"\x89PNG")
