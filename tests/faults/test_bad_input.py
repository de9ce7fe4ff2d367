"""Fuzzed graphs and configuration: a clear wukong error or the exact answer, never a crash or a hang.

Graphs are checked by building and partitioning them on the client (what every job does first),
against an oracle that knows which ones are valid; valid ones are also run, and compared with Dask.
"""

from __future__ import annotations

import operator

import dask
import pytest
from dask._task_spec import Task, TaskRef
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wukong
from wukong.core.graph import build_task_graph
from wukong.core.partition import partition
from wukong.errors import ConfigError, GraphError, MissingKeyError


@st.composite
def graphs(draw: st.DrawFn) -> tuple[dict, str, str]:
    """A dict graph of additions over keys ``k0..kN``, maybe with a cycle or a dangling key.

    Returns (graph, requested key, what is wrong: "" / "cycle" / "dangling").
    """
    size = draw(st.integers(2, 30))
    graph: dict = {"k0": 1}
    for i in range(1, size):
        inputs = draw(st.lists(st.integers(0, i - 1), min_size=0, max_size=4))
        graph[f"k{i}"] = (sum, [f"k{j}" for j in inputs]) if inputs else i
    fault = draw(st.sampled_from(["", "cycle", "dangling"]))
    last = f"k{size - 1}"
    if fault == "cycle":
        # The first task takes the last one as an input; the last one needs the first through a chain.
        graph.update({f"k{i}": (operator.add, f"k{i - 1}", i) for i in range(1, size)})
        graph["k0"] = (operator.add, last, 1)
    elif fault == "dangling":
        # In a legacy tuple a string that names no key is data; a TaskRef is always a reference.
        graph[last] = Task(last, operator.add, TaskRef("nowhere"), 1)
    return graph, last, fault


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_fuzzed_graphs_are_built_or_refused_clearly(case):
    graph, root, fault = case
    if fault:
        with pytest.raises(GraphError) as caught:
            partition(build_task_graph(graph, root), 1024)
        assert caught.value.keys, "the error names no key"
        assert ("cycle" if fault == "cycle" else "nowhere") in str(caught.value)
    else:
        partition(build_task_graph(graph, root), 1024)


@pytest.fixture(scope="module")
def client():
    with wukong.Client(timeout=120) as shared:
        yield shared
        shared.settle()
        assert shared.stores.list_keys("wukong/") == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graphs())
def test_fuzzed_valid_graphs_give_dasks_answer(client, case):
    graph, root, fault = case
    if not fault:
        assert client.get(graph, root) == dask.get(graph, root)


def test_a_missing_requested_key():
    with pytest.raises(MissingKeyError, match="not in the graph"):
        build_task_graph({"a": 1}, ["a", "b"])


def test_a_chain_of_100_000_tasks_runs(client):
    # One executor runs it all (each task becomes its only dependent): no recursion anywhere, and
    # a single page of schedules would not do (the plan is paged). 20,000 run on every pairing.
    length = 100_000
    graph: dict = {("link", 0): 0}
    graph.update({("link", i): (operator.add, ("link", i - 1), 1) for i in range(1, length)})
    root = ("link", length - 1)
    assert client.get(graph, root) == dask.get(graph, root)
    assert client.last_job.metrics.totals.executors == 1


def test_a_fan_in_of_100_000_is_planned():
    # Run, the engine tests fan 10,000 in on every pairing; chains of 100,000 tasks are partitioned
    # in tests/test_partition.py.
    width = 100_000
    graph: dict = {("part", i): (operator.add, i, 0) for i in range(width)}
    graph["total"] = (sum, [("part", i) for i in range(width)])
    planned = partition(build_task_graph(graph, "total"), 1024)
    assert len(planned.tasks) == width + 1 and len(planned.leaves) == width


@settings(max_examples=25, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "compute": st.sampled_from(["local", "nope", "", 3]),
            "storage": st.sampled_from(["embedded", "ideal", "carrier-pigeon://x", None, 1.5]),
            "timeout": st.sampled_from([1.0, -1, "soon", 0]),
            "page_tasks": st.sampled_from([1, 0, -5, "many"]),
            "locality": st.sampled_from([{}, {"clustering": "maybe"}, {"typo": True}, []]),
            "monitoring": st.sampled_from([{}, {"log_lines": -1}, {"progress": "sometimes"}]),
            "scheduling": st.sampled_from(["decentralized", "round-robin"]),
            "unknown_setting": st.just(1),
        },
    )
)
def test_fuzzed_configuration_fails_with_a_config_error_or_works(settings_):
    try:
        client = wukong.Client(**{"compute_options": {"mode": "threads", "workers": 1}, **settings_})
    except ConfigError as error:
        assert str(error)
        return
    with client:
        assert client.get({"a": 1, "b": (operator.add, "a", 1)}, "b") == 2
