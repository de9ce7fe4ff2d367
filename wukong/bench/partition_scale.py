"""How the static scheduler scales: graphs of up to a million tasks, beside ``dask.order``.

wukong's part is what the client does before it invokes the first leaf: normalise the graph
(:func:`~wukong.core.graph.build_task_graph`), partition it, and serialise the pages that leaf
needs (storing them is one write to the store); and, apart, the time to serialise every page,
which the client does while the first executors run. Time is measured without tracing, then peak
memory in a second pass under ``tracemalloc``. Two graphs: a tree reduction in which every node is
a task (a dict of tuple tasks), and a ``dask.array`` job, an elementwise chain then a sum over one
chunk per element (Dask's expressions build it, as ``Task`` objects; building it is not timed).

``python -m wukong.bench.partition_scale --sizes 16383,131071,1048575`` prints the sweep that
``docs/benchmarks.md`` shows.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from dask.order import order

from wukong.core import codec
from wukong.core.graph import build_task_graph, cycle_collection_paused, plans_frozen
from wukong.core.partition import partition
from wukong.testing.workloads import tree_reduction

PAGE_TASKS = 1024


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


def plan_pages(graph: Any, keys: Any, first_only: bool = False) -> list[bytes]:
    """Everything the client does to ``graph`` before it stores the pages: the serialised pages.

    ``first_only``: only the pages the first leaf needs, which is all the client does before its
    first invocation (it encodes the others while the first executors run).
    """
    with plans_frozen():  # as the client plans
        with cycle_collection_paused():
            graph_of_tasks = build_task_graph(graph, keys)
        with cycle_collection_paused():
            plan = partition(graph_of_tasks, PAGE_TASKS)
        pages = plan.pages_needed(0) if first_only else len(plan.pages)
        with cycle_collection_paused():
            return [codec.dumps_page(plan.page_columns(page)) for page in range(pages)]


def array_graph(chunks: int) -> tuple[dict, list]:
    """``((x + 1) * 2).sum()`` of a ``dask.array`` in ``chunks`` chunks, as Dask hands it over."""
    import dask
    import dask.array as da

    total = ((da.ones(chunks, chunks=1) + 1) * 2).sum()
    graph = dask.base.collections_to_expr([total], optimize_graph=True).__dask_graph__()
    return dict(graph), total.__dask_keys__()


def measure(leaves: int = 1 << 19, graph_of: str = "tree") -> dict[str, float]:
    """Seconds and peak bytes per task of wukong's static scheduler and of ``dask.order``.

    ``graph_of`` is ``tree`` (a tree reduction of ``leaves`` leaf tasks) or ``array`` (a
    ``dask.array`` sum over ``leaves`` chunks).
    """
    graph, keys = tree_reduction(leaves, leaf_tasks=True) if graph_of == "tree" else array_graph(leaves)
    tasks = len(graph)
    pages = plan_pages(graph, keys)
    return {
        "graph": graph_of,
        "tasks": tasks,
        "wukong_seconds": min(_timed(lambda: plan_pages(graph, keys)) for _ in range(2)),
        "wukong_first_invocation_seconds": min(
            _timed(lambda: plan_pages(graph, keys, first_only=True)) for _ in range(2)
        ),
        "dask_order_seconds": min(_timed(lambda: order(graph)) for _ in range(2)),
        "wukong_peak_bytes_per_task": _peak_bytes(lambda: plan_pages(graph, keys)) / tasks,
        "dask_order_peak_bytes_per_task": _peak_bytes(lambda: order(graph)) / tasks,
        "wukong_page_bytes_per_task": sum(map(len, pages)) / tasks,
    }


def main() -> None:
    """Print the planning sweep as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16383,131071,1048575", help="tasks of each tree reduction")
    parser.add_argument("--array-chunks", default="", help="chunk counts of the dask.array graphs")
    args = parser.parse_args()
    rows = [measure((int(size) + 1) // 2, "tree") for size in args.sizes.split(",") if size]
    rows += [measure(int(chunks), "array") for chunks in args.array_chunks.split(",") if chunks]
    print(
        "| graph | tasks | wukong to first invocation s | wukong every page s | dask.order s | ratios "
        "| wukong peak B/task | page B/task |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        order_seconds = row["dask_order_seconds"]
        print(
            f"| {row['graph']} | {row['tasks']:,} | {row['wukong_first_invocation_seconds']:.2f} | "
            f"{row['wukong_seconds']:.2f} | {order_seconds:.2f} | "
            f"{row['wukong_first_invocation_seconds'] / order_seconds:.2f}, "
            f"{row['wukong_seconds'] / order_seconds:.2f} | "
            f"{row['wukong_peak_bytes_per_task']:,.0f} | {row['wukong_page_bytes_per_task']:,.0f} |"
        )


if __name__ == "__main__":
    main()
