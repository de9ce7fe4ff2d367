"""PDSW'19 "tree reduction with delays": decentralized vs centralized vs Dask distributed.

A tree reduction of 1,024 numbers (1,023 additions, 10 levels) where every addition first sleeps 0,
100, 250 or 500 ms, on the simulated Lambda with its default model (50 ms invocations, 250 ms cold
starts): wukong's decentralized scheduling, the centralized strawman (the client invokes one
executor per ready task, with the same 16 parallel invokers), and Dask distributed with the paper
cluster's 40 threads.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from wukong.experiments.engines import dask_distributed, timed, wukong_engine
from wukong.experiments.outcome import Claim, Outcome, ratio
from wukong.testing.workloads import tree_reduction

DELAYS_MS = (0, 100, 250, 500)
ENGINES = ("decentralized", "centralized", "dask distributed")


def run(quick: bool = False, storage: str = "embedded", repeat: int = 1) -> Outcome:
    """Measure every engine at every delay."""
    leaves = 256 if quick else 1024
    delays = DELAYS_MS[::3] if quick else DELAYS_MS
    outcome = Outcome(
        "tr-delays",
        f"Tree reduction of {leaves} numbers with per-task delays, simulated Lambda + {storage}",
        [f"{delay} ms" for delay in delays],
        list(ENGINES),
    )
    graphs = {delay: tree_reduction(leaves, delay_ms=delay) for delay in delays}
    expected = leaves * (leaves - 1) // 2
    engines: dict[str, Any] = {
        "decentralized": lambda: wukong_engine(compute="simulated-lambda", storage=storage),
        "centralized": lambda: wukong_engine(
            compute="simulated-lambda", storage=storage, scheduling="centralized"
        ),
        "dask distributed": dask_distributed,
    }
    for engine, start in engines.items():
        with start() as get:
            for delay, (graph, root) in graphs.items():
                row = outcome.seconds.setdefault(f"{delay} ms", {})
                row[engine] = timed(partial(get, graph, root), expected, repeat)
    for delay in delays:
        row = outcome.seconds[f"{delay} ms"]
        outcome.claims.append(
            Claim(
                f"decentralized beats centralized at {delay} ms",
                f"centralized / decentralized = {ratio(row['centralized'], row['decentralized'])}",
                row["centralized"] > row["decentralized"],
            )
        )
    slowest = max(delays)
    levels = (leaves - 1).bit_length()
    critical = levels * (slowest / 1000 + 0.050)
    measured = outcome.seconds[f"{slowest} ms"]["decentralized"]
    outcome.notes.append(
        f"critical path at {slowest} ms: {levels} levels x ({slowest} ms + 50 ms invocation) = "
        f"{critical:.2f} s; decentralized took {measured / critical:.2f}x that (target <= 1.2x)"
    )
    return outcome
