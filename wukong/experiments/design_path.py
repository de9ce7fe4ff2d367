"""The design path: a centralized scheduler, then parallel invokers, then decentralized executors.

A tree reduction of 1,024 numbers, with no delay and with 100 ms per task, on the simulated Lambda
(50 ms invocations): the client invoking one executor per ready task through a single invoker, the
same with 16 parallel invokers, and wukong's decentralized scheduling (16 invokers for the leaves).
"""

from __future__ import annotations

import itertools
from functools import partial

from wukong.experiments.engines import timed, wukong_engine
from wukong.experiments.outcome import Claim, Outcome, ratio
from wukong.testing.workloads import tree_reduction

STEPS = {
    "centralized, 1 invoker": {"scheduling": "centralized", "compute_options": {"invokers": 1}},
    "centralized, 16 invokers": {"scheduling": "centralized"},
    "decentralized": {},
}


def run(quick: bool = False, storage: str = "embedded", repeat: int = 1) -> Outcome:
    """Time each step of the path."""
    leaves = 64 if quick else 1024
    delays = (0, 100)
    outcome = Outcome(
        "design-path",
        f"Design path on a tree reduction of {leaves} numbers, simulated Lambda + {storage}",
        [f"{delay} ms tasks" for delay in delays],
        list(STEPS),
    )
    expected = leaves * (leaves - 1) // 2
    for step, settings in STEPS.items():
        with wukong_engine(compute="simulated-lambda", storage=storage, **settings) as get:
            for delay in delays:
                graph, root = tree_reduction(leaves, delay_ms=delay)
                row = outcome.seconds.setdefault(f"{delay} ms tasks", {})
                row[step] = timed(partial(get, graph, root), expected, repeat)
    for delay in delays:
        row = outcome.seconds[f"{delay} ms tasks"]
        steps = list(STEPS)
        for before, after in itertools.pairwise(steps):
            outcome.claims.append(
                Claim(
                    f"{after} is faster than {before} ({delay} ms tasks)",
                    f"{ratio(row[before], row[after])} faster",
                    row[after] < row[before],
                )
            )
    return outcome
