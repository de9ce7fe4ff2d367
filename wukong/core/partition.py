"""The static scheduler: partition a task graph into schedules, once, before anything runs.

State. For every task the plan records its inputs (in counter-bit order), its dependents in the
order an executor prefers them, whether its output must be stored, and whether the client asked for
it. Tasks are grouped into *schedules*: one depth-first walk over dependents from every leaf, with
one ``visited`` set shared by all walks, so each task belongs to the schedule of the first leaf that
reaches it and the partition is linear in tasks plus edges. Consecutive schedules are stored
together as *pages* of about ``page_tasks`` tasks; an executor fetches the page of a task the first
time it needs it, and keeps it for the rest of the job.

Invariants.
* A task's output is stored exactly when another executor may need it: it has two or more
  dependents (one is become, the rest are invoked), or its one dependent has other inputs (another
  executor may complete that dependent's counter), or the client asked for it.
* Dependents are ordered by preference for ``become``: fewest inputs first (the largest share of
  the successor's inputs is then already in memory), then the longest path to a sink (the critical
  path stays in one executor while side branches run in parallel), then index.

Worked example: a tree reduction ``s = (a + b) + (c + d)``::

    a ─┐          leaves, in invocation order: a, b, c, d
    b ─┴─ ab ─┐   schedule of a: a, ab, s   (the walk from a reaches the root)
    c ─┐      ├─ s   schedule of b: b  (ab is visited already)
    d ─┴─ cd ─┘   schedule of c: c, cd; schedule of d: d

Every output is stored (each dependent has two inputs); ``s`` has counter size 2. Whichever of the
executors of ``a`` and ``b`` sets the second bit of ``ab``'s counter runs ``ab``; the other ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from wukong.core.graph import Key, TaskGraph


class Edge(NamedTuple):
    """An out-edge of a task: the dependent, its page, the bit this input sets, its input count."""

    task: int
    page: int
    bit: int
    fan_in: int


@dataclass(slots=True)
class TaskPlan:
    """Everything an executor needs to run one task and hand its output on."""

    key: Key
    node: Any
    inputs: tuple[int, ...]
    input_keys: tuple[Key, ...]
    dependents: tuple[Edge, ...]
    store_output: bool
    is_result: bool


@dataclass(slots=True)
class Plan:
    """A partitioned job.

    Attributes:
        tasks: the plan of each task, by index.
        leaves: the tasks with no inputs, in the order they are invoked.
        schedules: the tasks of each leaf's schedule, in walk order (parallel to ``leaves``).
        pages: the tasks stored in each page.
        page_of: the page of each task.

    """

    tasks: list[TaskPlan]
    leaves: list[int]
    schedules: list[list[int]]
    pages: list[list[int]]
    page_of: list[int]

    def page_contents(self, page: int) -> dict[int, TaskPlan]:
        """The tasks of ``page``, by index, as executors load them."""
        tasks = self.tasks
        return {task: tasks[task] for task in self.pages[page]}


def _heights(graph: TaskGraph) -> list[int]:
    """Longest path (in tasks) from each task to a sink; dependents come later in topological order."""
    heights = [0] * len(graph)
    dependents = graph.dependents
    for task in range(len(graph) - 1, -1, -1):
        after = dependents[task]
        if after:
            heights[task] = 1 + max(heights[d] for d in after)
    return heights


def _leaf_order(graph: TaskGraph) -> list[int]:
    """Leaves in the order a depth-first walk from the results meets them.

    Leaves that feed the same subtree come out next to each other, so a small pool finishes one
    subtree (and frees its memory) before it starts the next.
    """
    dependencies = graph.dependencies
    seen = bytearray(len(graph))
    leaves: list[int] = []
    stack = list(reversed(graph.results))
    while stack:
        task = stack.pop()
        if seen[task]:
            continue
        seen[task] = 1
        inputs = dependencies[task]
        if inputs:
            stack.extend(reversed(inputs))
        else:
            leaves.append(task)
    return leaves


def _schedules(graph: TaskGraph, leaves: list[int], preferred: list[list[int]]) -> list[list[int]]:
    """One depth-first walk over dependents per leaf, sharing one visited set."""
    visited = bytearray(len(graph))
    schedules = []
    for leaf in leaves:
        schedule = []
        stack = [leaf]
        while stack:
            task = stack.pop()
            if visited[task]:
                continue
            visited[task] = 1
            schedule.append(task)
            # Reversed, so the preferred dependent (the one to become) is walked first.
            stack.extend(reversed(preferred[task]))
        schedules.append(schedule)
    return schedules


def _pages(schedules: list[list[int]], page_tasks: int, size: int) -> tuple[list[list[int]], list[int]]:
    """Cut consecutive schedules into pages of at most ``page_tasks`` tasks."""
    pages: list[list[int]] = [[]]
    for schedule in schedules:
        for task in schedule:
            if len(pages[-1]) >= page_tasks:
                pages.append([])
            pages[-1].append(task)
    page_of = [0] * size
    for number, page in enumerate(pages):
        for task in page:
            page_of[task] = number
    return pages, page_of


def partition(graph: TaskGraph, page_tasks: int = 1024) -> Plan:
    """Partition ``graph`` into schedules and pages and decide, per task, what to store and become."""
    size = len(graph)
    dependencies = graph.dependencies
    fan_in = [len(inputs) for inputs in dependencies]
    heights = _heights(graph)
    preferred = [sorted(after, key=lambda d: (fan_in[d], -heights[d], d)) for after in graph.dependents]
    leaves = _leaf_order(graph)
    schedules = _schedules(graph, leaves, preferred)
    pages, page_of = _pages(schedules, page_tasks, size)

    # The bit each input sets in its dependent's counter is its position among that dependent's inputs.
    bits: list[dict[int, int]] = [{} for _ in range(size)]
    for task, inputs in enumerate(dependencies):
        for bit, dependency in enumerate(inputs):
            bits[dependency][task] = bit

    results = set(graph.results)
    keys = graph.keys
    tasks = []
    for task in range(size):
        after = preferred[task]
        edges = tuple(Edge(d, page_of[d], bits[task][d], fan_in[d]) for d in after)
        store = task in results or len(after) > 1 or (len(after) == 1 and fan_in[after[0]] > 1)
        tasks.append(
            TaskPlan(
                key=keys[task],
                node=graph.nodes[task],
                inputs=dependencies[task],
                input_keys=tuple(keys[i] for i in dependencies[task]),
                dependents=edges,
                store_output=store,
                is_result=task in results,
            )
        )
    return Plan(tasks=tasks, leaves=leaves, schedules=schedules, pages=pages, page_of=page_of)
