"""What an executor does with a task's output: the decisions alone, with no store and no clock.

The executor (:mod:`wukong.core.executor`) asks these functions what to do, then does it, in the
protocol's order. Each decision depends only on the task's plan, the job's locality policy, whether
the output is big, and what the counters answered, so each one reads, and is tested, as a table
(``tests/test_decisions.py``).

A hand-off is decided in two steps, either side of the round trip that counts:

1. :func:`decide_counting`, before any counter changes: which dependents' counters the output sets
   now, which dependents the executor keeps for delayed I/O, and whether the output is written
   first. With delayed I/O, :func:`holders_to_ask` says whose holder counters to set before it.
2. :func:`decide_routing`, once the counters have answered: which ready dependents run here, which
   get an executor of their own (and so need the output written), and whether the output stays in
   the locality cache for a dependent that may still become ready here.

Each dependent kept for delayed I/O then goes through :func:`decide_wait` until it is counted.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from wukong.core.invocation import ExecutorOptions
from wukong.core.partition import Edge, TaskPlan


@dataclass(frozen=True, slots=True)
class Policy:
    """The job's locality settings, as the decisions use them.

    Attributes:
        clustering: run every ready dependent of a big output here.
        delayed_io_seconds: how long the first holder of a big input waits for the other inputs of
            its dependent (0: no delayed I/O).
        big_object_bytes: the serialized size from which an output is big.
        caching: keep outputs in memory for dependents that may become ready here later.

    """

    clustering: bool = False
    delayed_io_seconds: float = 0.0
    big_object_bytes: int = 0
    caching: bool = False

    @classmethod
    def of(cls, options: ExecutorOptions) -> Policy:
        """The policy an executor of a job with ``options`` follows."""
        return cls(
            clustering=options.clustering,
            delayed_io_seconds=options.delayed_io_seconds,
            big_object_bytes=options.big_object_bytes,
            caching=options.cache_bytes > 0,
        )

    @property
    def delayed_io(self) -> bool:
        """Whether holders of big inputs wait for the other inputs of their dependents."""
        return self.delayed_io_seconds > 0

    def size_matters(self, plan: TaskPlan) -> bool:
        """Whether the output's size can change the hand-off (so it must be measured first)."""
        return bool(plan.dependents) and (self.clustering or self.delayed_io)

    def is_big(self, plan: TaskPlan, size: int) -> bool:
        """Whether an output of ``size`` bytes is big for this hand-off."""
        return self.size_matters(plan) and size >= self.big_object_bytes

    def wait_seconds(self, remaining: float | None) -> float:
        """How long delayed I/O may wait, given the compute backend's ``remaining`` time.

        It keeps a fifth of what remains, and a second, to write the output if the wait runs out.
        """
        if remaining is None:
            return self.delayed_io_seconds
        return min(self.delayed_io_seconds, max(0.0, remaining * 0.8 - 1.0))


def fan_ins(plan: TaskPlan) -> list[Edge]:
    """The dependents with more than one input: those with a counter."""
    return [edge for edge in plan.dependents if edge.fan_in > 1]


def holders_to_ask(plan: TaskPlan, policy: Policy, big: bool) -> list[Edge]:
    """The fan-in dependents whose holder counters a big output sets, to learn if it is the first.

    The first holder of a big input of a dependent keeps it and waits for the other inputs; a later
    one writes and counts at once, so two holders never wait for each other.
    """
    return fan_ins(plan) if big and policy.delayed_io else []


@dataclass(frozen=True, slots=True)
class Counting:
    """What happens to an output before its dependents are known to be ready.

    Attributes:
        store: write the output now, before any counter changes (write before count).
        counted: the dependents whose counters it sets now.
        kept: the dependents it waits for (delayed I/O), counted later by :func:`decide_wait`.
        next_here: the one dependent that runs here next if the count completes it; the count may
            then bring its other inputs, or the executor's count-out, in the same round trip.

    """

    store: bool
    counted: tuple[Edge, ...]
    kept: tuple[Edge, ...]
    next_here: Edge | None


def decide_counting(
    plan: TaskPlan, policy: Policy, big: bool, first_holder_of: Collection[int] = ()
) -> Counting:
    """What to count and whether to write first; ``first_holder_of``: tasks whose holder answered 1.

    A big output is written only when another executor may read it: for a counter it may complete
    (and, by :func:`decide_routing`, for a dependent that gets an executor of its own). Any other
    output is written as the plan says (it is read elsewhere, or requested).
    """
    waiting = big and policy.delayed_io
    kept = tuple(e for e in fan_ins(plan) if waiting and e.task in first_holder_of)
    counted = tuple(e for e in fan_ins(plan) if e not in kept)
    single = len(counted) == len(plan.dependents) == 1
    return Counting(
        store=bool(counted) if big else plan.store_output,
        counted=counted,
        kept=kept,
        next_here=counted[0] if single else None,
    )


@dataclass(frozen=True, slots=True)
class Routing:
    """Where the ready dependents run, once the counters have answered.

    Attributes:
        here: the dependents this executor runs, in order (the first is next).
        invoked: the dependents that each get a new executor; the output is written for them
            first, and they are counted in before they are invoked.
        cache: keep the output in memory for a fan-in dependent that is not ready yet, which may
            become ready here (it is also kept while a dependent in ``here`` needs it).

    """

    here: tuple[Edge, ...]
    invoked: tuple[Edge, ...]
    cache: bool

    @property
    def store(self) -> bool:
        """Whether the output must be in storage before the invocations go out."""
        return bool(self.invoked)


def decide_routing(
    plan: TaskPlan, policy: Policy, big: bool, counting: Counting, complete: Collection[int]
) -> Routing:
    """Route the ready dependents; ``complete``: the dependents whose counters this output completed.

    The executor *becomes* the first ready dependent in the plan's order and invokes the others;
    with clustering, a big output's executor runs them all itself. A dependent kept for delayed I/O
    and already complete runs here too, last: keeping it local is why the executor waited.
    """
    ready = [e for e in plan.dependents if e.fan_in == 1 or e.task in complete]
    waited = [e for e in ready if e in counting.kept]
    ready = [e for e in ready if e not in counting.kept]
    here, invoked = (ready, []) if big and policy.clustering else (ready[:1], ready[1:])
    pending = any(e.task not in complete for e in fan_ins(plan))
    return Routing(tuple(here + waited), tuple(invoked), policy.caching and pending)


class WaitStep(enum.Enum):
    """What an executor does next for a dependent it keeps (delayed I/O)."""

    COUNT = "count"  # the other inputs are in: count (its output never written) and run it here
    STORE_AND_COUNT = "store and count"  # out of time: write the output, then count, as usual
    WAIT = "wait"  # look again later


def decide_wait(others_in: bool, timed_out: bool) -> WaitStep:
    """The next step for a kept dependent: ``others_in``, its other inputs have all been counted."""
    if others_in:
        return WaitStep.COUNT
    return WaitStep.STORE_AND_COUNT if timed_out else WaitStep.WAIT
