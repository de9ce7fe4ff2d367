"""Reference DAGs run by the engine tests and the benchmarks, each with its expected answer."""

from __future__ import annotations

import operator
import time
from typing import Any

import dask
import dask.array as da
import numpy as np


def add_after(delay: float, left: Any, right: Any) -> Any:
    """Add two numbers after ``delay`` seconds of sleep (the PDSW'19 per-task delay)."""
    time.sleep(delay)
    return left + right


def tree_reduction(leaves: int, delay_ms: float = 0, leaf_tasks: bool = False) -> tuple[dict, tuple]:
    """A dict graph that adds ``leaves`` numbers pairwise; returns (graph, root key).

    Each addition sleeps ``delay_ms`` first. The leaves are constants, or with ``leaf_tasks`` tasks
    of their own, so that every node of the graph is a task (``2 * leaves - 1`` of them).
    """
    graph: dict = {("leaf", i): (operator.pos, i) if leaf_tasks else i for i in range(leaves)}
    keys = [("leaf", i) for i in range(leaves)]
    level = 0
    while len(keys) > 1:
        level += 1
        pairs = [keys[i : i + 2] for i in range(0, len(keys), 2)]
        keys = []
        for i, pair in enumerate(pairs):
            key = ("add", level, i)
            if len(pair) == 1:
                graph[key] = (operator.pos, pair[0])
            elif delay_ms:
                graph[key] = (add_after, delay_ms / 1000, *pair)
            else:
                graph[key] = (operator.add, *pair)
            keys.append(key)
    return graph, keys[0]


def nap(*values: int) -> int:
    """Sleep 20 ms, then add one to the sum of ``values``: a short task with real duration."""
    time.sleep(0.02)
    return sum(values) + 1


def layered(width: int = 24, depth: int = 6) -> tuple[dict, str]:
    """Layers of naps, each task reading two of the layer below (fan-out 2, fan-in 2), then a sum.

    Busy enough that a worker killed at a random moment is most likely in a task or a storage call.
    """
    graph: dict = {("n", 0, i): (nap, i) for i in range(width)}
    for layer in range(1, depth):
        for i in range(width):
            graph["n", layer, i] = (nap, ("n", layer - 1, i), ("n", layer - 1, (i + 1) % width))
    graph["total"] = (sum, [("n", depth - 1, i) for i in range(width)])
    return graph, "total"


def gemm():
    """``X @ X.T`` of a 1200x1200 array in 400x400 chunks."""
    x = da.random.RandomState(1).random_sample((1200, 1200), chunks=(400, 400))
    return x @ x.T


def svd_tall_skinny():
    """``da.linalg.svd`` of a 20,000x50 array in 2,000-row chunks."""
    x = da.random.RandomState(2).random_sample((20_000, 50), chunks=(2_000, 50))
    return da.linalg.svd(x)


def svd_compressed():
    """``da.linalg.svd_compressed(k=5)`` of a 1200x1200 array in 400x400 chunks."""
    x = da.random.RandomState(3).random_sample((1200, 1200), chunks=(400, 400))
    return da.linalg.svd_compressed(x, k=5, seed=4)


def fan_out_fan_in(width: int = 100):
    """A ``dask.delayed`` source, ``width`` branches reading it, and one task gathering them."""

    @dask.delayed(pure=False)
    def source():
        return np.arange(10.0)

    @dask.delayed(pure=False)
    def branch(values, i):
        return float((values * i).sum())

    @dask.delayed(pure=False)
    def gather(parts):
        return sum(parts)

    root = source()
    return gather([branch(root, i) for i in range(width)])


def reference(*collections):
    """What Dask's synchronous scheduler computes."""
    return dask.compute(*collections, scheduler="sync")
