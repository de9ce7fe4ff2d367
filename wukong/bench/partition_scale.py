"""How the static scheduler scales: a graph of about a million tasks, beside ``dask.order``.

wukong's part is what the client does before invoking anything: normalise the graph
(:func:`~wukong.core.graph.build_task_graph`) and partition it. Time is measured without tracing,
then peak memory in a second pass under ``tracemalloc``.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from dask.order import order

from wukong.core.graph import build_task_graph
from wukong.core.partition import partition
from wukong.testing.workloads import tree_reduction


def _timed(step: Callable[[], Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def _peak_bytes(step: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(leaves: int = 1 << 19) -> dict[str, float]:
    """Seconds and peak bytes per task of wukong's static scheduler and of ``dask.order``."""
    graph, root = tree_reduction(leaves, leaf_tasks=True)
    tasks = len(graph)

    def wukong_static() -> Any:
        return partition(build_task_graph(graph, root), 1024)

    return {
        "tasks": tasks,
        "wukong_seconds": min(_timed(wukong_static) for _ in range(2)),
        "dask_order_seconds": min(_timed(lambda: order(graph)) for _ in range(2)),
        "wukong_peak_bytes_per_task": _peak_bytes(wukong_static) / tasks,
        "dask_order_peak_bytes_per_task": _peak_bytes(lambda: order(graph)) / tasks,
    }
