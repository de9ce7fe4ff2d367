"""The PDSW'19 strawman: a client that schedules every task itself (``scheduling="centralized"``).

The client invokes one executor per ready task; each executor runs its task, stores the output and
appends a done record; the client counts each dependent's inputs in memory and invokes it once they
are all done. It shares the executors, the stores and the compute backends with wukong's own
decentralized scheduling, so that experiments compare the two policies and nothing else: the
executor is wukong's, with its hand-off replaced (the job names :data:`EXECUTOR` in its options).
"""

from __future__ import annotations

from typing import Any

from wukong.core import records
from wukong.core.executor import Executor
from wukong.core.partition import Edge, Plan, TaskPlan

EXECUTOR = f"{__name__}:StrawmanExecutor"  # what a centralized job's executor options name


class CentralScheduler:
    """Which tasks become ready as tasks are reported done."""

    def __init__(self, plan: Plan):
        self._plan = plan
        self._missing = [plan.fan_in(task) for task in range(len(plan))]
        self._done: set[int] = set()

    def done(self, task: int) -> list[int]:
        """Task ``task`` is done: the dependents it made ready (none for a repeated report)."""
        if task in self._done:
            return []
        self._done.add(task)
        ready = []
        for dependent in self._plan.preferred[task]:
            self._missing[dependent] -= 1
            if self._missing[dependent] == 0:
                ready.append(dependent)
        return ready


def stores_output(plan: TaskPlan) -> bool:
    """Whether the strawman's executor stores the output of ``plan``'s task: whenever it is read."""
    return bool(plan.dependents) or plan.is_result


class StrawmanExecutor(Executor):
    """An executor that runs its one task, stores the output, tells the client, and runs nothing else."""

    def _hand_off(self, task: int, plan: TaskPlan, value: Any) -> list[Edge]:
        if stores_output(plan):
            items = {self.keys.output(task): self.encode(plan, value)}
            self.stores.data.put_many(items)
        self.metadata.append(self.keys.records, records.encode(records.DoneRecord(task)))
        self.timeline.written(task)
        return []
