"""The static scheduler: schedules, become preference, what is stored, at any size."""

from __future__ import annotations

import operator
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_random_dags import random_dags
from wukong.core.graph import build_task_graph
from wukong.core.partition import partition
from wukong.testing.workloads import tree_reduction


def plan_of(dsk, keys, page_tasks=1024):
    graph = build_task_graph(dsk, keys)
    return graph, partition(graph, page_tasks)


def by_key(graph, plan):
    return {graph.keys[i]: task for i, task in enumerate(plan.tasks)}


def assert_partition_is_exact(graph, plan):
    owned = [task for schedule in plan.schedules for task in schedule]
    assert sorted(owned) == list(range(len(graph))), "every task in exactly one schedule"
    assert [schedule[0] for schedule in plan.schedules] == plan.leaves
    assert all(not graph.dependencies[leaf] for leaf in plan.leaves)
    assert sorted(t for page in plan.pages for t in page) == list(range(len(graph)))
    for number, page in enumerate(plan.pages):
        assert all(plan.page_of[t] == number for t in page)
    # The client invokes a leaf once its pages are stored: they must hold all its executors may run.
    needed = [plan.pages_needed(leaf) for leaf in range(len(plan.leaves))]
    assert needed == sorted(needed) and needed[-1] == len(plan.pages)
    for leaf, pages in zip(plan.leaves, needed, strict=True):
        reachable, stack = {leaf}, [leaf]
        while stack:
            for dependent in graph.dependents[stack.pop()]:
                if dependent not in reachable:
                    reachable.add(dependent)
                    stack.append(dependent)
        assert max(plan.page_of[t] for t in reachable) < pages


def test_chain_is_one_schedule_and_stores_nothing_but_the_result():
    dsk = {"a": (abs, 1), "b": (operator.neg, "a"), "c": (operator.neg, "b")}
    graph, plan = plan_of(dsk, "c")
    assert_partition_is_exact(graph, plan)
    assert len(plan.schedules) == 1
    tasks = by_key(graph, plan)
    assert [tasks[k].store_output for k in "abc"] == [False, False, True]


def test_fan_out_becomes_the_dependent_on_the_critical_path():
    dsk = {
        "a": (abs, 1),
        "short": (operator.neg, "a"),
        "long1": (operator.neg, "a"),
        "long2": (operator.neg, "long1"),
    }
    graph, plan = plan_of(dsk, ["short", "long2"])
    tasks = by_key(graph, plan)
    become = tasks["a"].dependents[0]
    assert graph.keys[become.task] == "long1"
    assert tasks["a"].store_output  # the other dependent runs in another executor


def test_become_prefers_the_dependent_with_fewest_inputs():
    dsk = {
        "a": (abs, 1),
        "b": (abs, 2),
        "only_a": (operator.neg, "a"),
        "both": (operator.add, "a", "b"),
    }
    graph, plan = plan_of(dsk, ["only_a", "both"])
    assert graph.keys[by_key(graph, plan)["a"].dependents[0].task] == "only_a"


def test_fan_in_counter_bits_are_distinct_positions():
    dsk = {f"x{i}": (abs, i) for i in range(5)}
    dsk["sum"] = (sum, [f"x{i}" for i in range(5)])
    graph, plan = plan_of(dsk, "sum")
    tasks = by_key(graph, plan)
    bits = sorted(tasks[f"x{i}"].dependents[0].bit for i in range(5))
    assert bits == [0, 1, 2, 3, 4]
    assert all(tasks[f"x{i}"].dependents[0].fan_in == 5 for i in range(5))
    assert len(plan.schedules) == 5


def test_diamond():
    dsk = {
        "a": (abs, 1),
        "b": (operator.neg, "a"),
        "c": (operator.pos, "a"),
        "d": (operator.add, "b", "c"),
    }
    graph, plan = plan_of(dsk, "d")
    assert_partition_is_exact(graph, plan)
    assert len(plan.schedules) == 1
    tasks = by_key(graph, plan)
    assert tasks["a"].store_output and tasks["b"].store_output and tasks["c"].store_output


@settings(max_examples=60, deadline=None)
@given(dag=random_dags(), page_tasks=st.integers(1, 4))
def test_random_dags_partition_exactly_in_small_pages(dag, page_tasks):
    inputs, wanted = dag
    dsk = {f"t{i}": (max, i, *(f"t{j}" for j in deps)) for i, deps in enumerate(inputs)}
    graph, plan = plan_of(dsk, [f"t{i}" for i in wanted], page_tasks)
    assert_partition_is_exact(graph, plan)


def test_tree_reduction_leaves_of_one_subtree_are_adjacent():
    dsk, root = tree_reduction(16)
    graph, plan = plan_of(dsk, root)
    assert_partition_is_exact(graph, plan)
    # The numbers are folded into the first additions, which are the leaves.
    assert all(graph.keys[leaf][:2] == ("add", 1) for leaf in plan.leaves)
    order = [graph.keys[leaf][2] for leaf in plan.leaves]
    pairs = [sorted(order[i : i + 2]) for i in range(0, 8, 2)]
    assert all(high - low == 1 and low % 2 == 0 for low, high in pairs)
    assert len(plan.schedules[0]) == 4  # the first leaf's walk reaches the root: 3 levels above it


def test_ten_thousand_wide_fan_out():
    dsk = {"root": (abs, 0)}
    dsk.update({("leaf", i): (operator.add, "root", i) for i in range(10_000)})
    graph, plan = plan_of(dsk, [("leaf", i) for i in range(10_000)], page_tasks=1000)
    assert_partition_is_exact(graph, plan)
    assert plan.leaves == [graph.keys.index("root")]
    assert len(plan.pages) == 11
    assert len(plan.tasks[plan.leaves[0]].dependents) == 10_000


@pytest.mark.slow
def test_deep_chain_of_100_000_tasks_partitions_without_recursion():
    dsk = {("x", i): (operator.add, ("x", i - 1), 1) for i in range(1, 100_000)}
    dsk[("x", 0)] = (abs, 0)
    _, plan = plan_of(dsk, ("x", 99_999))
    assert len(plan.schedules) == 1 and len(plan.schedules[0]) == 100_000


def test_stored_pages_read_back_as_the_plans_and_size_every_counter():
    from dask._task_spec import Alias, DataNode, Task, TaskRef

    from wukong.core import codec
    from wukong.core.calls import Call
    from wukong.core.partition import page_plans

    dsk, root = tree_reduction(64, leaf_tasks=True)
    dsk["wide"] = (sum, [("leaf", i) for i in range(40)])  # wider than a scan: bits from a table
    dsk["task"] = Task("task", operator.add, TaskRef(root), TaskRef("wide"))
    dsk["kw"] = Task("kw", round, TaskRef("task"), ndigits=1)
    dsk["nested"] = Task("nested", operator.neg, Task(None, abs, TaskRef("kw")))
    dsk["data"] = Task("data", operator.sub, TaskRef("nested"), DataNode(None, 5))  # travels lean
    dsk["alias"] = Task("alias", operator.mul, Alias("of-data", "data"), 3)  # travels lean
    dsk["set"] = (sorted, {"alias", "wide", 7})  # a function of a collection: travels lean
    graph, plan = plan_of(dsk, ["set", "wide"], page_tasks=16)
    assert_partition_is_exact(graph, plan)
    values = {key: 1 for key in graph.keys}
    bits: dict[int, list[int]] = {}
    for page in range(len(plan.pages)):
        stored = page_plans(codec.loads(codec.dumps_page(plan.page_columns(page))))
        for task, expected in plan.page_contents(page).items():
            got = stored[task]
            assert (got.key, got.inputs, got.dependents) == (
                expected.key,
                expected.inputs,
                expected.dependents,
            )
            assert (got.store_output, got.is_result) == (expected.store_output, expected.is_result)
            assert got.input_keys == tuple(graph.keys[i] for i in graph.dependencies[task])
            inputs = {key: values[key] for key in got.input_keys}
            assert got.node(inputs) == graph.nodes[task](inputs)
            if got.key in ("task", "data", "alias", "wide", "set"):  # no nodes but references, values
                assert type(got.node) is Call
            for edge in got.dependents:
                assert edge.fan_in == len(graph.dependencies[edge.task])
                bits.setdefault(edge.task, []).append(edge.bit)
    for task, inputs in enumerate(graph.dependencies):
        assert sorted(bits.get(task, [])) == list(range(len(inputs))), "one bit per input"


def test_executors_of_one_process_that_need_a_page_at_once_read_it_once(redis_url):
    from wukong.core import codec
    from wukong.core.executor import PageCache
    from wukong.core.keys import JobKeys
    from wukong.core.stores import Stores
    from wukong.monitoring.metrics import Metrics

    graph, plan = plan_of(*tree_reduction(2048, leaf_tasks=True), page_tasks=4096)
    stores, keys = Stores.open((redis_url, {})), JobKeys("page-cache-test")
    blob = codec.dumps_page(plan.page_columns(0))
    stores.metadata.put(keys.page(0), blob)
    threads = 32
    start, cache = threading.Barrier(threads), PageCache()

    def ask(task: int) -> tuple[int, Any, int]:
        metrics = Metrics()
        start.wait()
        got = cache.task(stores, keys, 0, task, metrics)
        return task, got.key, metrics.metadata_bytes_read

    try:
        with ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(ask, range(0, len(graph), len(graph) // threads)[:threads]))
    finally:
        stores.metadata.delete_many([keys.page(0)])
        stores.close()
    assert all(key == graph.keys[task] for task, key, _ in answers)
    assert sum(read for _, _, read in answers) == len(blob), "one thread loads, the others wait for it"
