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
* Every task reachable from a leaf is in that leaf's schedule or an earlier one (the leaf's walk
  visits whatever reachable task no earlier walk did), so the executors it starts read only the
  pages up to the end of its schedule: the client invokes it once those are stored.
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

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dask import _task_spec
from dask._task_spec import Alias, DataNode, GraphNode, Task, TaskRef

from wukong.core.calls import Call, call_with_collection
from wukong.core.graph import Key, TaskGraph

_SCANNED_INPUTS = 32  # a wider fan-in finds an input's bit in a table, not by a scan


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


_WIRE_STORE, _WIRE_RESULT = 1, 2  # a task's flags in a stored page


@dataclass(slots=True)
class Plan:
    """A partitioned job, held as columns by task index; :meth:`task` builds one task's plan.

    Attributes:
        graph: the graph it partitions.
        preferred: each task's dependents, in the order an executor prefers to become them.
        leaves: the tasks with no inputs, in the order they are invoked.
        walked: every task once: the schedule of each leaf in turn, each in walk order.
        starts: where each leaf's schedule begins in ``walked`` (parallel to ``leaves``).
        pages: the tasks stored in each page.
        page_of: the page of each task.
        results: the requested tasks.

    """

    graph: TaskGraph
    preferred: list[list[int]]
    leaves: list[int]
    walked: list[int]
    starts: list[int]
    pages: list[list[int]]
    page_of: list[int]
    results: frozenset[int]
    _wide_bits: dict[int, dict[int, int]] = field(default_factory=dict, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.graph)

    @property
    def schedules(self) -> list[list[int]]:
        """The tasks of each leaf's schedule, in walk order (parallel to ``leaves``)."""
        walked, ends = self.walked, [*self.starts[1:], len(self.walked)]
        return [walked[start:end] for start, end in zip(self.starts, ends, strict=True)]

    def pages_needed(self, leaf: int) -> int:
        """How many pages, from the first, hold every task that ``leaves[leaf]``'s executors may run.

        They run tasks reachable from the leaf, and the walks put each of those in the leaf's own
        schedule or in an earlier one: the pages up to the end of its schedule hold them all. Never
        falls as ``leaf`` grows.
        """
        starts = self.starts
        end = starts[leaf + 1] if leaf + 1 < len(starts) else len(self.walked)
        return self.page_of[self.walked[end - 1]] + 1

    @property
    def tasks(self) -> list[TaskPlan]:
        """Every task's plan, by index (builds them all: for small plans and tests)."""
        return [self.task(task) for task in range(len(self.graph))]

    def fan_in(self, task: int) -> int:
        """How many inputs ``task`` has."""
        return len(self.graph.dependencies[task])

    def fan_out(self, task: int) -> int:
        """How many tasks take ``task``'s output."""
        return len(self.preferred[task])

    def stores_output(self, task: int) -> bool:
        """Whether ``task``'s output must be stored (see the invariants in the module's text)."""
        after = self.preferred[task]
        return (
            len(after) > 1
            or (len(after) == 1 and len(self.graph.dependencies[after[0]]) > 1)
            or task in self.results
        )

    def edges(self, task: int) -> tuple[Edge, ...]:
        """``task``'s out-edges, in preference order."""
        return tuple(Edge(*fields) for fields in self._edge_fields(task))

    def _edge_fields(self, task: int) -> Iterator[tuple[int, int, int, int]]:
        """The fields of ``task``'s out-edges, in preference order (see :class:`Edge`)."""
        dependencies, page_of = self.graph.dependencies, self.page_of
        for d in self.preferred[task]:
            yield d, page_of[d], self._bit(task, d), len(dependencies[d])

    def _bit(self, task: int, dependent: int) -> int:
        """The bit ``task`` sets in ``dependent``'s counter: its position among the inputs."""
        inputs = self.graph.dependencies[dependent]
        if len(inputs) <= _SCANNED_INPUTS:
            return inputs.index(task)
        bits = self._wide_bits.get(dependent)
        if bits is None:
            bits = self._wide_bits[dependent] = {t: bit for bit, t in enumerate(inputs)}
        return bits[task]

    def task(self, task: int) -> TaskPlan:
        """Everything an executor needs to run ``task``."""
        graph = self.graph
        keys, inputs = graph.keys, graph.dependencies[task]
        return TaskPlan(
            key=keys[task],
            node=graph.nodes[task],
            inputs=inputs,
            input_keys=tuple(keys[i] for i in inputs),
            dependents=self.edges(task),
            store_output=self.stores_output(task),
            is_result=task in self.results,
        )

    def page_contents(self, page: int) -> dict[int, TaskPlan]:
        """The tasks of ``page``, by index, as executors load them."""
        return {task: self.task(task) for task in self.pages[page]}

    def page_columns(self, page: int) -> tuple[Any, ...]:
        """The stored form of ``page``: columns of plain values, read back by :func:`page_plans`.

        No per-task object of wukong's is pickled. The input keys of a lean call are left out:
        they are its dependencies, in the same order.
        """
        graph, results, preferred, page_of = self.graph, self.results, self.preferred, self.page_of
        keys, nodes, dependencies = graph.keys, graph.nodes, graph.dependencies
        tasks = self.pages[page]
        edges = []
        flags = bytearray(len(tasks))
        for position, task in enumerate(tasks):
            # The fields of _edge_fields and the rule of stores_output, inline: this runs per task.
            after = preferred[task]
            if len(after) == 1:  # most tasks: no list to grow
                d = after[0]
                inputs = dependencies[d]
                fan_in = len(inputs)
                bit = inputs.index(task) if fan_in <= _SCANNED_INPUTS else self._bit(task, d)
                edges.append([d, page_of[d], bit, fan_in])
                stored = fan_in > 1
            else:
                flat: list[int] = []
                for d in after:
                    inputs = dependencies[d]
                    bit = inputs.index(task) if len(inputs) <= _SCANNED_INPUTS else self._bit(task, d)
                    flat += (d, page_of[d], bit, len(inputs))
                edges.append(flat)
                stored = len(after) > 1
            if task in results:
                flags[position] = _WIRE_RESULT | _WIRE_STORE
            elif stored:
                flags[position] = _WIRE_STORE
        page_nodes = list(map(nodes.__getitem__, tasks))
        return (
            tasks,
            list(map(keys.__getitem__, tasks)),
            [(n.func, n.args, n.refs) if type(n) is Call else _wire_node(n) for n in page_nodes],
            list(map(dependencies.__getitem__, tasks)),
            [
                None if type(n) is Call else tuple([keys[i] for i in dependencies[t]])
                for t, n in zip(tasks, page_nodes, strict=True)
            ],
            edges,
            bytes(flags),
        )


def _wire_node(node: Any) -> Any:
    """A node as a plain tuple ``(func, args, refs)`` where it is a call, pickled without Python code.

    Dask's ``Task`` pickles every slot through a Python method; one that only calls its function
    on references (``TaskRef``, or ``Alias``, which evaluates to its target's value), constants and
    plain values (no keyword arguments, no other nested nodes) computes the same as a
    :class:`~wukong.core.calls.Call`: a ``DataNode`` argument evaluates to its value, so the value
    travels in its place. So does Dask's commonest fan-in, a function of one collection of such
    arguments (``(func, [key, ...])``, which Dask makes a ``Task`` of a nested ``Task``), through
    :func:`~wukong.core.calls.call_with_collection`. Any other node travels as it is.
    """
    kind = type(node)
    if kind is Call:
        return node.func, node.args, node.refs
    if kind is not Task or node.kwargs:
        return node
    args = node.args
    if len(args) == 1 and type(args[0]) is Task and _COLLECTS is not None and args[0].func is _COLLECTS:
        collection = args[0]
        typ = collection.kwargs.get("typ")
        if len(collection.kwargs) != 1 or typ is None:
            return node
        lean = _lean_arguments(collection.args, 2)  # after the function and the collection's type
        return node if lean is None else (call_with_collection, (node.func, typ, *lean[0]), lean[1])
    lean = _lean_arguments(args, 0)
    return node if lean is None else (node.func, *lean)


def _lean_arguments(args: tuple[Any, ...], offset: int) -> tuple[tuple[Any, ...], tuple[int, ...]] | None:
    """A Task's arguments as a call's: references as their keys, constants as their values.

    Returns them with the keys' positions (plus ``offset``); ``None`` where an argument is
    another node.
    """
    lean = None  # a copy of the arguments, made at the first one to replace
    refs = []
    for position, arg in enumerate(args):
        kind = type(arg)
        if kind is TaskRef or kind is Alias or kind is DataNode:
            if lean is None:
                lean = list(args)
            if kind is DataNode:
                lean[position] = arg.value
            else:  # an Alias computes what a reference to its target computes
                lean[position] = arg.key if kind is TaskRef else arg.target
                refs.append(position + offset)
        elif kind not in _PLAIN_ARGUMENTS and isinstance(arg, (GraphNode, TaskRef)):
            return None
    return (args if lean is None else tuple(lean)), tuple(refs)


_PLAIN_ARGUMENTS = frozenset({int, float, str, bytes, tuple, dict, list, type(None)})
# The function of the nested Task that Dask makes of a list of keys in a legacy task: private to
# Dask, so where a version lacks it such tasks travel whole.
_COLLECTS = getattr(_task_spec, "_identity_cast", None)


def page_plans(columns: tuple[Any, ...]) -> dict[int, TaskPlan]:
    """The plans of a page's tasks, by index, from :meth:`Plan.page_columns`."""
    tasks, keys, nodes, inputs, input_keys, edges, flags = columns
    plans = {}
    for position, task in enumerate(tasks):
        node, flat = nodes[position], edges[position]
        if type(node) is tuple:
            node = Call(*node)
        plans[task] = TaskPlan(
            key=keys[position],
            node=node,
            inputs=inputs[position],
            input_keys=node.dependencies if input_keys[position] is None else input_keys[position],
            dependents=tuple(Edge(*flat[i : i + 4]) for i in range(0, len(flat), 4)),
            store_output=bool(flags[position] & _WIRE_STORE),
            is_result=bool(flags[position] & _WIRE_RESULT),
        )
    return plans


def _heights(graph: TaskGraph) -> list[int]:
    """Longest path (in tasks) from each task to a sink, its dependents' first."""
    heights = [0] * len(graph)
    dependents = graph.dependents
    for task in reversed(graph.order):
        after = dependents[task]
        if len(after) == 1:  # most tasks: no list to build
            heights[task] = heights[after[0]] + 1
        elif after:
            heights[task] = 1 + max([heights[d] for d in after])
    return heights


def _leaf_order(graph: TaskGraph) -> list[int]:
    """Leaves in the order a depth-first walk from the results meets them, left to right.

    Leaves that feed the same subtree come out next to each other, so a small pool finishes one
    subtree (and frees its memory) before it starts the next. The walk goes right to left, and
    its order is reversed: that pushes each task's inputs on the stack as they are, and in a
    tree it is the left-to-right order (a leaf shared by subtrees comes with its last one).
    """
    dependencies = graph.dependencies
    seen = bytearray(len(graph))
    leaves: list[int] = []
    stack = list(graph.results)
    while stack:
        task = stack.pop()
        if seen[task]:
            continue
        seen[task] = 1
        inputs = dependencies[task]
        if inputs:
            stack += inputs
        else:
            leaves.append(task)
    leaves.reverse()
    return leaves


def _schedules(
    graph: TaskGraph, leaves: list[int], preferred: list[list[int]]
) -> tuple[list[int], list[int]]:
    """One depth-first walk over dependents per leaf, sharing one visited set.

    Returns every task in the order the walks meet them, and where each leaf's walk begins: one
    list for all, not one a leaf (a tree has a schedule for every other task).
    """
    visited = bytearray(len(graph))
    walked: list[int] = []
    starts: list[int] = []
    stack: list[int] = []  # empty again at the end of each leaf's walk
    for leaf in leaves:
        starts.append(len(walked))
        stack.append(leaf)
        while stack:
            task = stack.pop()
            while not visited[task]:  # up a chain of single dependents without the stack: most tasks
                visited[task] = 1
                walked.append(task)
                after = preferred[task]
                if len(after) != 1:
                    # Reversed, so the preferred dependent (the one to become) is walked first.
                    stack.extend(reversed(after))
                    break
                task = after[0]
    return walked, starts


def _pages(walked: list[int], page_tasks: int, size: int) -> tuple[list[list[int]], list[int]]:
    """Cut the walked tasks (consecutive schedules) into pages of at most ``page_tasks`` tasks."""
    pages = [walked[start : start + page_tasks] for start in range(0, len(walked), page_tasks)] or [[]]
    page_of = [0] * size
    for number, page in enumerate(pages):
        for task in page:
            page_of[task] = number
    return pages, page_of


def partition(graph: TaskGraph, page_tasks: int = 1024) -> Plan:
    """Partition ``graph`` into schedules and pages and decide, per task, what to store and become."""
    dependencies = graph.dependencies
    # Only a task with two or more dependents has a preference to decide. In a tree none has: every
    # edge leaves a different task (two passes in C tell it, where listing the forks takes one in Python).
    preferred = graph.dependents
    edges, leaving = sum(map(len, preferred)), sum(map(bool, preferred))
    forks = [] if edges == leaving else [task for task, after in enumerate(preferred) if len(after) > 1]
    if forks:
        heights = _heights(graph)

        def preference(dependent: int) -> tuple[int, int, int]:
            return len(dependencies[dependent]), -heights[dependent], dependent

        preferred = list(preferred)  # the graph's lists where there is one dependent or none
        for task in forks:
            preferred[task] = sorted(preferred[task], key=preference)
    leaves = _leaf_order(graph)
    walked, starts = _schedules(graph, leaves, preferred)
    pages, page_of = _pages(walked, page_tasks, len(graph))
    return Plan(graph, preferred, leaves, walked, starts, pages, page_of, frozenset(graph.results))
