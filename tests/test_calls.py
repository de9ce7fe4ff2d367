"""Lean calls compute what Dask's own conversion of a tuple task computes, or are not made."""

from __future__ import annotations

import operator
import pickle
from collections import namedtuple

import numpy as np
import pytest
from dask._task_spec import DataNode, Task, TaskRef, convert_legacy_task

from wukong.core.calls import plain_call
from wukong.core.graph import build_task_graph

Point = namedtuple("Point", "x y")

GRAPH_KEYS = {"x", "y", 1, 2.5, ("t", 0)}
VALUES = {"x": 10, "y": 20, 1: 30, 2.5: 40, ("t", 0): 50}


def pack(*args):
    return args


# Each task, and whether it takes the lean path (else Dask converts it).
TASKS = [
    ((operator.add, "x", "y"), True),
    ((operator.add, "x", "x"), True),
    ((pack, "x", "not a key", 7, None, 3.5), True),
    ((pack, 1, 2.5, ("t", 0)), True),  # keys that are numbers and tuples
    ((pack, True), True),  # True equals the key 1: Dask reads it as that key too
    ((pack, np.float64(2.5), np.int64(1)), False),  # a float subclass: left to Dask, which finds 2.5
    ((pack, np.arange(3)), True),
    ((pack, ("t", 1)), False),  # a tuple that is no key may hold keys: Dask converts it
    ((pack, ["x", "y"]), False),
    ((pack, {"a": "x"}), False),
    ((pack, {"x"}), False),
    ((pack, Point("x", 1)), False),
    ((pack, (operator.neg, "x")), False),  # a nested task
    ((pack, TaskRef("x")), False),
    ((pack, [1, [2, "x"]]), False),
    ((pack, ([],)), False),  # unhashable tuple
]


@pytest.mark.parametrize(("task", "lean"), TASKS, ids=[repr(t[1:]) for t, _ in TASKS])
def test_a_plain_call_computes_what_dasks_task_computes(task, lean):
    call = plain_call(task, GRAPH_KEYS)
    assert (call is not None) == lean
    if call is None:
        return
    dasks = convert_legacy_task("k", task, GRAPH_KEYS)
    assert set(call.dependencies) == set(dasks.dependencies)
    assert len(call.dependencies) == len(set(call.dependencies))
    values = {key: VALUES[key] for key in dasks.dependencies}
    expected = dasks(values)
    assert repr(call(values)) == repr(expected)  # repr: numpy arrays compare elementwise
    again = pickle.loads(pickle.dumps(call))
    assert repr(again(values)) == repr(expected)
    assert repr(call.as_task("k")(values)) == repr(expected)


@pytest.mark.parametrize(("task", "lean"), TASKS, ids=[repr(t[1:]) for t, _ in TASKS])
def test_the_graph_walk_reads_each_task_as_dask_does(task, lean):
    """The walk that numbers a graph reads tuple tasks itself: same inputs, same value as Dask's task."""
    graph = build_task_graph({**VALUES, "k": task}, ["k", *VALUES])  # requested: no constant folds
    k = graph.keys.index("k")
    dasks = convert_legacy_task("k", task, {*VALUES, "k"})
    assert {graph.keys[i] for i in graph.dependencies[k]} == set(dasks.dependencies)
    assert len(graph.dependencies[k]) == len(dasks.dependencies)
    values = {key: VALUES[key] for key in dasks.dependencies}
    assert repr(graph.nodes[k](values)) == repr(dasks(values))


@pytest.mark.parametrize("value", [(1, 2), (), "x", 3, [operator.add, 1, 2]], ids=repr)
def test_a_value_that_is_no_tuple_task_is_left_to_dask(value):
    assert plain_call(value, GRAPH_KEYS) is None


def test_a_call_without_arguments():
    call = plain_call((dict,), GRAPH_KEYS)
    assert call.dependencies == () and call({}) == {}


def test_a_constant_folded_into_a_call_is_an_argument_no_longer_a_key():
    call = plain_call((operator.add, "x", "y"), GRAPH_KEYS)
    folded = call.substitute({"x": DataNode("x", 5)})
    assert folded.dependencies == ("y",)
    assert folded({"y": 1}) == 6 == Task("k", operator.add, 5, TaskRef("y"))({"y": 1})
