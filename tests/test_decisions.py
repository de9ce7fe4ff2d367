"""The executor's decisions as tables: no store, no worker, no clock (see wukong.core.decisions)."""

from __future__ import annotations

import pytest

from wukong.core.decisions import (
    Counting,
    Policy,
    WaitStep,
    decide_counting,
    decide_routing,
    decide_wait,
    holders_to_ask,
)
from wukong.core.partition import Edge, TaskPlan

PLAIN = Policy()
CACHING = Policy(caching=True)
CLUSTERING = Policy(clustering=True, big_object_bytes=100)
DELAYED = Policy(delayed_io_seconds=5.0, big_object_bytes=100)
BOTH = Policy(clustering=True, delayed_io_seconds=5.0, big_object_bytes=100, caching=True)

# Dependents by name: the letter says the dependent, the figure its number of inputs.
A1, B1, C1 = Edge(1, 0, 0, 1), Edge(2, 0, 0, 1), Edge(3, 0, 0, 1)
D2, E3 = Edge(4, 0, 1, 2), Edge(5, 0, 2, 3)


def plan(*dependents: Edge, store: bool = False, result: bool = False) -> TaskPlan:
    return TaskPlan("t", None, (), (), dependents, store, result)


def tasks(edges) -> tuple[int, ...]:
    return tuple(edge.task for edge in edges)


@pytest.mark.parametrize(
    ("case", "the_plan", "policy", "big", "first_of", "store", "counted", "kept", "next_here"),
    [
        ("a chain stores nothing", plan(A1), PLAIN, False, (), False, (), (), None),
        ("a requested output is stored", plan(result=True, store=True), PLAIN, False, (), True, (), (), None),
        ("a fan-in writes, counts, may run next", plan(D2, store=True), PLAIN, False, (), True, (4,), (), 4),
        (
            "two dependents: no count brings inputs",
            plan(A1, D2, store=True),
            PLAIN,
            False,
            (),
            True,
            (4,),
            (),
            None,
        ),
        ("every fan-in is counted", plan(D2, E3, store=True), PLAIN, False, (), True, (4, 5), (), None),
        (
            "a big first holder keeps, writes nothing",
            plan(D2, store=True),
            DELAYED,
            True,
            (4,),
            False,
            (),
            (4,),
            None,
        ),
        ("a big later holder writes and counts", plan(D2, store=True), DELAYED, True, (), True, (4,), (), 4),
        ("a small output never waits", plan(D2, store=True), DELAYED, False, (4,), True, (4,), (), 4),
        (
            "a big fan-out counts nothing, writes nothing",
            plan(A1, B1, store=True),
            CLUSTERING,
            True,
            (),
            False,
            (),
            (),
            None,
        ),
        ("clustering alone does not wait", plan(D2, store=True), CLUSTERING, True, (4,), True, (4,), (), 4),
        ("keeps one, counts the other", plan(D2, E3, store=True), BOTH, True, (5,), True, (4,), (5,), None),
    ],
)
def test_counting(case, the_plan, policy, big, first_of, store, counted, kept, next_here):
    decided = decide_counting(the_plan, policy, big, first_of)
    assert decided.store is store, case
    assert (tasks(decided.counted), tasks(decided.kept)) == (counted, kept), case
    assert (decided.next_here and decided.next_here.task) == next_here, case


@pytest.mark.parametrize(
    ("case", "the_plan", "policy", "big", "kept", "complete", "here", "invoked", "cache"),
    [
        ("becomes the first, invokes the rest", plan(A1, B1, C1), PLAIN, False, (), (), (1,), (2, 3), False),
        (
            "a big output's executor runs them all",
            plan(A1, B1, C1),
            CLUSTERING,
            True,
            (),
            (),
            (1, 2, 3),
            (),
            False,
        ),
        ("a small output is not clustered", plan(A1, B1), CLUSTERING, False, (), (), (1,), (2,), False),
        ("an incomplete fan-in ends the executor", plan(D2), PLAIN, False, (), (), (), (), False),
        ("unless the cache may keep the output", plan(D2), CACHING, False, (), (), (), (), True),
        ("a complete fan-in runs here", plan(D2), CACHING, False, (), (4,), (4,), (), False),
        ("a waited-for dependent runs here, last", plan(A1, D2), BOTH, True, (D2,), (4,), (1, 4), (), False),
        ("a wait still on: the rest goes on", plan(A1, D2), BOTH, True, (D2,), (), (1,), (), True),
        ("a kept dependent is never invoked", plan(A1, D2), DELAYED, True, (D2,), (4,), (1, 4), (), False),
    ],
)
def test_routing(case, the_plan, policy, big, kept, complete, here, invoked, cache):
    counting = Counting(store=False, counted=(), kept=kept, next_here=None)
    decided = decide_routing(the_plan, policy, big, counting, complete)
    assert (tasks(decided.here), tasks(decided.invoked), decided.cache) == (here, invoked, cache), case
    assert decided.store is bool(invoked), case  # written before anyone is invoked to read it


@pytest.mark.parametrize(
    ("others_in", "timed_out", "step"),
    [
        (True, False, WaitStep.COUNT),
        (True, True, WaitStep.COUNT),  # in at the last moment: still never written
        (False, True, WaitStep.STORE_AND_COUNT),
        (False, False, WaitStep.WAIT),
    ],
)
def test_a_kept_dependent(others_in, timed_out, step):
    assert decide_wait(others_in, timed_out) is step


@pytest.mark.parametrize(
    ("policy", "the_plan", "big", "asked"),
    [
        (DELAYED, plan(A1, D2, E3), True, (4, 5)),
        (DELAYED, plan(D2), False, ()),
        (CLUSTERING, plan(D2), True, ()),
    ],
)
def test_whose_holders_a_big_output_asks(policy, the_plan, big, asked):
    assert tasks(holders_to_ask(the_plan, policy, big)) == asked


@pytest.mark.parametrize(
    ("remaining", "seconds"),
    [(None, 5.0), (100.0, 5.0), (5.0, 3.0), (1.0, 0.0)],
)
def test_a_wait_leaves_time_to_write(remaining, seconds):
    assert DELAYED.wait_seconds(remaining) == pytest.approx(seconds)


def test_size_matters_only_with_dependents_and_a_big_object_rule():
    assert not PLAIN.size_matters(plan(A1))
    assert not BOTH.size_matters(plan(result=True))
    assert BOTH.is_big(plan(A1), 100) and not BOTH.is_big(plan(A1), 99)
