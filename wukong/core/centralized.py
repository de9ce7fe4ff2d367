"""The PDSW'19 strawman: a client that schedules every task itself, for experiments only.

The client invokes one executor per ready task; each executor runs its task, stores the output and
appends a done record; the client counts each dependent's inputs in memory and invokes it once they
are all done. It shares the executors, the stores and the compute backends with wukong's own
decentralized scheduling, so that experiments compare the two policies and nothing else.
"""

from __future__ import annotations

from wukong.core.partition import Plan


class CentralScheduler:
    """Which tasks become ready as tasks are reported done."""

    def __init__(self, plan: Plan):
        self._plan = plan
        self._missing = [len(task.inputs) for task in plan.tasks]
        self._done: set[int] = set()

    def done(self, task: int) -> list[int]:
        """Task ``task`` is done: the dependents it made ready (none for a repeated report)."""
        if task in self._done:
            return []
        self._done.add(task)
        ready = []
        for edge in self._plan.tasks[task].dependents:
            self._missing[edge.task] -= 1
            if self._missing[edge.task] == 0:
                ready.append(edge.task)
        return ready
