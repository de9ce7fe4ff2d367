"""``wukong bench``: the PDSW'19 evaluation, wukong beside Dask's engines, in one run on one machine.

For every workload (:mod:`wukong.bench.workloads`) and every engine (:mod:`wukong.bench.engines`):
one warm-up computation, then ``repeat`` timed ones; the median, min and max are kept, every result is
checked against Dask's synchronous scheduler, and each engine's median is divided by the best Dask
engine's for that workload. Engines run one at a time, each started before its timings and stopped
after, with one BLAS thread per worker everywhere. The report is a table, a JSON file and a PNG chart
(:mod:`wukong.bench.report`); the static scheduler's scale on a million-task graph is measured beside
``dask.order`` (:mod:`wukong.bench.partition_scale`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import dask

from wukong.bench.engines import ENGINES, one_blas_thread, started
from wukong.bench.workloads import Workload, compute, same_result, workloads


@dataclass
class Timing:
    """One engine's timings on one workload, in seconds."""

    workload: str
    engine: str
    runs: list[float]
    median: float = field(init=False)
    ratio_to_best_dask: float | None = None

    def __post_init__(self) -> None:
        self.median = statistics.median(self.runs)


def machine_facts(workers: int) -> dict[str, Any]:
    """Cores, versions and settings, printed in the header of every report."""
    import numpy
    import redis

    import wukong

    return {
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "workers": workers,
        "blas_threads_per_worker": 1,
        "python": platform.python_version(),
        "wukong": wukong.__version__,
        "dask": dask.__version__,
        "numpy": numpy.__version__,
        "redis-py": redis.__version__,
    }


def run(
    chosen: Sequence[Workload], engines: Sequence[str], repeat: int, workers: int, redis_url: str | None
) -> list[Timing]:
    """Time every engine on every workload; raise if an engine computes a different result."""
    expected = {workload.name: compute(workload.build(), dask.get) for workload in chosen}
    timings: list[Timing] = []
    for name in engines:
        with started(name, workers, redis_url) as engine:
            for workload in chosen:
                built = workload.build()
                compute(built, engine.get, engine.persisted)  # warm-up
                engine.settle()
                runs = []
                for _ in range(repeat):
                    begun = time.perf_counter()
                    result = compute(built, engine.get, engine.persisted)
                    runs.append(time.perf_counter() - begun)
                    engine.settle()
                    if not same_result(result, expected[workload.name]):
                        raise AssertionError(f"{name} computed a different result for {workload.name}")
                timings.append(Timing(workload.name, name, runs))
                print(f"  {workload.name:<22} {name:<24} {timings[-1].median:9.3f} s", flush=True)
    for workload in chosen:
        mine = [t for t in timings if t.workload == workload.name]
        dask_medians = [t.median for t in mine if not t.engine.startswith("wukong")]
        if dask_medians:
            for timing in mine:
                timing.ratio_to_best_dask = timing.median / min(dask_medians)
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks from the command line (``wukong bench``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_from_arguments(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``wukong bench``."""
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: the whole run in under two minutes"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs per engine and workload (after a warm-up)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="workers in every engine")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines to run")
    parser.add_argument("--workloads", help="comma-separated workload names (default: all)")
    parser.add_argument("--delays", default="0,10,100", help="milliseconds of sleep per task in the TR sweep")
    parser.add_argument("--redis", help="a Redis URL for the 'wukong redis' engine (default: start one)")
    parser.add_argument(
        "--partition-leaves", type=int, default=1 << 19, help="leaves of the partitioner graph"
    )
    parser.add_argument(
        "--skip-partition", action="store_true", help="do not measure the partitioner's scale"
    )
    parser.add_argument("--out", default="bench-results", help="directory for results.json and results.png")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m wukong.bench``."""
    parser = argparse.ArgumentParser(prog="wukong bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return parser


def run_from_arguments(args: argparse.Namespace) -> int:
    """Run what ``args`` asks for, print the table, write JSON and PNG."""
    from wukong.bench import partition_scale, report

    one_blas_thread()
    delays = tuple(float(d) for d in args.delays.split(","))
    chosen = workloads(args.quick, delays)
    if args.workloads:
        wanted = {name.strip() for name in args.workloads.split(",")}
        chosen = [w for w in chosen if w.name in wanted or w.name.split()[0] in wanted]
    engines = [name.strip() for name in args.engines.split(",")]
    facts = machine_facts(args.workers)
    print(report.header(facts))
    timings = run(chosen, engines, args.repeat, args.workers, args.redis)
    scale = None
    if not args.skip_partition:
        scale = partition_scale.measure(1 << 12 if args.quick else args.partition_leaves)
    print(report.table(chosen, engines, timings))
    if scale:
        print(report.scale_table(scale))
    os.makedirs(args.out, exist_ok=True)
    report.write_json(
        os.path.join(args.out, "results.json"),
        facts,
        [asdict(t) for t in timings],
        scale,
        [{"name": w.name, "description": w.description} for w in chosen],
    )
    report.write_chart(os.path.join(args.out, "results.png"), engines, timings, facts)
    print(f"wrote {args.out}/results.json and {args.out}/results.png")
    return 0
