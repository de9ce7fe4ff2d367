"""Graph input: normalisation, culling, and errors found before anything runs."""

from __future__ import annotations

import gc
import operator

import dask
import pytest
from dask._task_spec import Task, TaskRef, convert_legacy_task
from dask.highlevelgraph import HighLevelGraph

from wukong import GraphError, MissingKeyError
from wukong.core.graph import build_task_graph, cycle_collection_paused, pack_results, plans_frozen


def test_culls_to_what_the_requested_keys_need():
    dsk = {"a": (abs, -1), "b": (operator.neg, "a"), "unused": (operator.neg, "a")}
    graph = build_task_graph(dsk, "b")
    assert graph.keys == ["b", "a"]  # as the walk from "b" meets them
    assert graph.dependencies == [(1,), ()]
    assert graph.dependents == [[], [0]]
    assert list(graph.order) == [1, 0]


def test_constants_used_once_are_folded_into_their_user():
    dsk = {
        "one": 1,
        "two": 2,
        "shared": 3,
        "a": (operator.add, "one", "shared"),
        "b": (operator.add, "two", "shared"),
    }
    graph = build_task_graph(dsk, ["a", "b", "two"])
    # "one" folds into "a"; "two" is requested and "shared" has two users, so both stay tasks.
    assert sorted(graph.keys) == ["a", "b", "shared", "two"]
    assert graph.nodes[graph.keys.index("a")]({"shared": 3}) == 4


@pytest.mark.parametrize(
    "dsk",
    [
        {"x0": (abs, 0), **{f"x{i}": (operator.add, f"x{i - 1}", 1) for i in range(1, 50)}, "end": "x49"},
        # The walk from "end" meets "c" before "b", which needs it: its numbering is no order.
        {"c": (abs, -1), "b": (operator.neg, "c"), "a": (operator.neg, "b"), "end": (operator.add, "a", "c")},
        # Inputs shared by later tasks, met before them: the numbering stands, dependents grow.
        {
            **{leaf: (abs, i) for i, leaf in enumerate("xyz")},
            "a": (operator.add, "x", "y"),
            "b": (operator.add, "y", "z"),
            "end": (operator.add, "a", "b"),
        },
    ],
    ids=["chain", "crossing", "shared"],
)
def test_topological_order_puts_dependencies_first(dsk):
    graph = build_task_graph(dsk, "end")
    assert sorted(graph.keys) == sorted(dsk)
    assert sorted(graph.order) == list(range(len(graph)))
    place = {task: i for i, task in enumerate(graph.order)}
    for task, inputs in enumerate(graph.dependencies):
        assert all(place[i] < place[task] for i in inputs)
        dasks = convert_legacy_task(None, dsk[graph.keys[task]], dsk)
        assert {graph.keys[i] for i in inputs} == set(dasks.dependencies)
    assert graph.dependents == [
        [user for user, inputs in enumerate(graph.dependencies) if task in inputs]
        for task in range(len(graph))
    ]


def test_a_constant_that_is_an_int_is_never_read_as_a_task_number():
    """The walk's key table maps a key to its task, then to its number: an int task is neither."""
    dsk = {
        "zero": 0,
        "one": 1,
        "a": (operator.add, "one", "zero"),
        "b": (operator.mul, "a", "one"),
        "c": (operator.add, "a", "b"),
    }
    graph = build_task_graph(dsk, "c")
    values: dict = {}
    for task in graph.order:
        values[graph.keys[task]] = graph.nodes[task](
            {graph.keys[i]: values[graph.keys[i]] for i in graph.dependencies[task]}
        )
    assert values["c"] == dask.get(dsk, "c") == 2
    assert {graph.keys[i] for i in graph.dependencies[graph.keys.index("c")]} == {"a", "b"}


def test_a_key_held_in_the_store_is_a_plain_value_to_a_tuple_task():
    """Dask reads a tuple's argument as a key only if the graph has it, and a held key it has not."""
    dsk = {"a": Task("a", operator.neg, TaskRef("h")), "b": (str.upper, "h")}
    graph = build_task_graph(dsk, ["a", "b"], held={"h": Task("h", abs, -1)})
    a, b = graph.keys.index("a"), graph.keys.index("b")
    assert [graph.keys[i] for i in graph.dependencies[a]] == ["h"]
    assert graph.dependencies[b] == () and graph.nodes[b]({}) == "H"


def test_high_level_graph():
    layers = {"a": {"x": 1}, "b": {"y": (operator.add, "x", 1)}}
    graph = build_task_graph(HighLevelGraph(layers, {"a": set(), "b": {"a"}}), ["y", "x"])
    assert sorted(graph.keys) == ["x", "y"]


def test_missing_requested_key_is_a_key_error_naming_it():
    with pytest.raises(MissingKeyError, match="'nope'") as caught:
        build_task_graph({"a": 1}, ["a", ["nope"]])
    assert isinstance(caught.value, KeyError)
    assert caught.value.keys == ["nope"]


def test_missing_dependency_names_task_and_dependency():
    from dask._task_spec import Task, TaskRef

    with pytest.raises(GraphError, match="'b' needs 'ghost'") as caught:
        build_task_graph({"a": 1, "b": Task("b", operator.add, TaskRef("a"), TaskRef("ghost"))}, "b")
    assert caught.value.keys == ["b"]


def test_cycle_reports_the_cycle_only():
    dsk = {"a": (operator.neg, "b"), "b": (operator.neg, "a"), "c": (operator.neg, "a"), "d": 1}
    with pytest.raises(GraphError, match="cycle") as caught:
        build_task_graph(dsk, ["c", "d"])
    assert set(caught.value.keys) == {"a", "b"}


def test_long_cycle_does_not_recurse():
    n = 100_000
    dsk = {i: (operator.neg, (i + 1) % n) for i in range(n)}
    with pytest.raises(GraphError):
        build_task_graph(dsk, 0)


def test_pack_results_keeps_nesting_as_tuples():
    values = {"a": 1, "b": 2}
    assert pack_results([["a"], "b", []], values) == ((1,), 2, ())
    assert pack_results("a", values) == 1


def test_rejects_what_is_not_a_graph():
    with pytest.raises(GraphError, match="cannot run a int"):
        build_task_graph(42, "x")


def test_a_plan_is_kept_from_the_cycle_collector_until_its_scope_ends():
    """Planned objects go to the collector's permanent generation, and come back when jobs end."""
    assert gc.get_freeze_count() == 0
    with plans_frozen():
        with cycle_collection_paused():
            assert not gc.isenabled()
            plan = [[task] for task in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(plan)
        with plans_frozen():  # a second job at once: the first to end gives nothing back
            pass
        assert gc.get_freeze_count() >= len(plan)
    assert gc.get_freeze_count() == 0


def test_objects_the_process_froze_itself_stay_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with plans_frozen(), cycle_collection_paused():
            plan = [[task] for task in range(1000)]
        # Nothing more was frozen (frozen objects freed meanwhile may lower the count), nor given back.
        assert len(plan) == 1000 and 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
