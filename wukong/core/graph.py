"""Graph input: from whatever Dask hands a scheduler to an indexed, culled, acyclic task graph.

Dask gives a scheduler an expression object (``x.compute()`` in Dask 2025+), a ``HighLevelGraph``,
or a plain dict whose values are tuple tasks, literals, or the task-spec objects ``Task``,
``Alias`` and ``DataNode``. :func:`build_task_graph` turns each of these into one form, as
``dask.local.get_async`` does (``__dask_graph__`` then ``convert_legacy_graph``), keeps only what the
requested keys need, folds constants used once into their user, and checks for missing dependencies
and cycles before anything runs.

The result names tasks by index, and lists them in a topological order (every task after its
dependencies). The index is the order in which the walk from the requested keys met the task
where that needs no renumbering (in a tree, and in most graphs Dask makes), and the topological
order otherwise::

    >>> from operator import add
    >>> g = build_task_graph({"x": 1, "y": (add, "x", 10), "z": (add, "y", "x")}, "z")
    >>> g.keys, [sorted(inputs) for inputs in g.dependencies], g.results, list(g.order)
    (['z', 'y', 'x'], [[1, 2], [2], []], [0], [2, 1, 0])
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Container, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from dask._task_spec import Alias, DataNode, GraphNode, Task, convert_legacy_task
from dask.core import flatten

from wukong.core.calls import NOT_A_KEY, Call, read_call
from wukong.errors import GraphError, MissingKeyError

Key = Hashable

_SHOWN_KEYS = 10
PLAN_BYTES_PER_TASK = 1500
"""Client memory a job takes a task, rounded up from about 1.1 kB measured at a million tasks
(plan, pages, payloads and the job's books; the user's graph aside): ``docs/benchmarks.md``."""
_MISSING = -1  # the number of a key argument no task produces


@dataclass(slots=True)
class TaskGraph:
    """A task graph ready to partition.

    Attributes:
        keys: the Dask key of each task, by index.
        nodes: the executable node of each task (``node(inputs)`` computes it).
        dependencies: the indices of each task's inputs.
        dependents: the indices of the tasks that take each task's output.
        results: the indices of the requested keys, without repeats.
        order: every index once, each after the indices of its task's inputs.

    """

    keys: list[Key]
    nodes: list[GraphNode | Call]
    dependencies: list[tuple[int, ...]]
    dependents: list[list[int]]
    results: list[int]
    order: Sequence[int]

    def __len__(self) -> int:
        return len(self.keys)


def plan_budget_tasks(plan_memory_bytes: int | None) -> int | None:
    """The most tasks a plan within ``plan_memory_bytes`` may have (``None``: half this machine's memory).

    ``None`` where the machine does not say how much memory it has.
    """
    if plan_memory_bytes is None:
        try:
            plan_memory_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
        except (AttributeError, ValueError, OSError):
            return None
    return max(1, plan_memory_bytes // PLAN_BYTES_PER_TASK)


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a plan is built (it resumes after, if it ran before).

    Planning allocates millions of small objects and frees almost none of them, so the collector
    would walk every one of them again each time the survivors grow by a quarter: at a million
    tasks that doubles the planning time, and it finds nothing, for plans hold no cycles. Inside
    :func:`plans_frozen`, what exists on leaving is also put out of the collector's way.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        _PLANS.planned()
    finally:
        if enabled:
            gc.enable()


class _FrozenPlans:
    """The jobs whose plans are out of the cycle collector's way, and whether any were frozen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs = 0
        self._frozen = False
        self._frozen_by_others = False  # the process froze objects itself: left alone

    def planned(self) -> None:
        with self._lock:
            if self._jobs and not self._frozen_by_others:
                gc.freeze()
                self._frozen = True

    @contextmanager
    def job(self) -> Iterator[None]:
        with self._lock:
            if self._jobs == 0:
                self._frozen_by_others = gc.get_freeze_count() > 0
            self._jobs += 1
        try:
            yield
        finally:
            with self._lock:
                self._jobs -= 1
                if self._jobs == 0 and self._frozen:
                    gc.unfreeze()
                    self._frozen = False


_PLANS = _FrozenPlans()


def plans_frozen() -> AbstractContextManager[None]:
    """Keep the plans made in this scope out of the cycle collector's passes until it ends.

    On leaving :func:`cycle_collection_paused` inside this scope, every object that exists moves to
    the collector's permanent generation (``gc.freeze``); the last scope to end moves them back.
    Otherwise the first allocation after planning walks every object planning made (half a
    second at a million tasks) and the older generations' passes walk them again while the job
    runs. A frozen object is still freed as usual when nothing refers to it; only garbage in a
    reference cycle among them waits for the scope's end. A process that froze objects itself
    (``gc.freeze`` before the first scope began) is left as it is.
    """
    return _PLANS.job()


def as_mapping(dsk: Any) -> Mapping:
    """Return the graph of a Dask expression or collection, or ``dsk`` itself if it is a mapping."""
    if isinstance(dsk, Mapping):
        return dsk
    graph = getattr(dsk, "__dask_graph__", None)
    if graph is None:
        raise GraphError(
            f"cannot run a {type(dsk).__name__}: expected a Dask graph (a mapping), a collection "
            "or an expression",
            [],
        )
    return graph()


def _shown(keys: Iterable[Key]) -> str:
    keys = list(keys)
    listed = ", ".join(repr(k) for k in keys[:_SHOWN_KEYS])
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return listed + more


def _node(key: Key, value: Any, graph_keys: Container[Key]) -> GraphNode | None:
    """The task of ``key`` as Dask reads ``value`` (``None``: a key that only names itself)."""
    node = convert_legacy_task(key, value, graph_keys)
    if isinstance(node, Alias) and node.target == key:
        return None  # convert_legacy_graph drops such a task
    return node if isinstance(node, GraphNode) else DataNode(key, node)


@dataclass(slots=True)
class _Numbered:
    """The tasks the requested keys need, numbered as the walk first meets them."""

    keys: list[Key]
    nodes: list[GraphNode | Call]
    inputs: list[tuple[int, ...]]
    targets: list[int]
    constants: list[int]
    """The tasks that are plain values (Dask's ``DataNode``)."""
    reversible: bool
    """Whether every task's inputs were numbered after it: the numbering reversed is then a
    topological order (so in a tree, and in most graphs Dask makes)."""


def _number_needed(mapping: Mapping, held: Mapping | None, targets: list[Key]) -> _Numbered:
    """Convert and number the requested tasks and everything they depend on, each once.

    Every key is hashed here and never again: what follows works on the numbers. A plain tuple
    task is read in the pass that numbers its inputs (:func:`~wukong.core.calls.read_call`), so
    each of its key arguments is looked up once; any other task goes through Dask's conversion.
    A dependency no task produces is an error naming the tasks that need it.
    """
    graph_keys = mapping if isinstance(mapping, dict) else set(mapping)  # Dask's ``all_keys``
    # The key table: each key of the graph to its task until the walk meets it, then to its number.
    # A copy of the graph keeps its hashes, and one lookup tells a key from a plain value, gives
    # the number of a key met before, or the task of one met now (no second lookup in the graph).
    index: dict[Key, Any] = dict(mapping)
    if int in set(map(type, index.values())):  # a constant that is an int would read as a number
        for key, value in index.items():
            if type(value) is int:
                index[key] = DataNode(key, value)
    keys: list[Key] = []
    nodes: list[Any] = []  # a plain tuple task stays a tuple until the walk reads it
    inputs: list[tuple[int, ...]] = []
    missing: dict[Key, list[Key]] = {}
    unmet: list[Key] = []  # the keys no task produces that the current task needs
    held_only: set[Key] = set()  # numbered, but not the graph's keys: a tuple's argument never names them
    constants: list[int] = []
    reversible = True

    def meet(key: Key, value: Any) -> int:
        """Number ``key``, whose key-table entry is ``value``; ``_MISSING`` (noted) if no task makes it."""
        kind = type(value)  # a Dask task needs no conversion, a tuple task is read by the walk
        if kind is not Task and not (kind is tuple and value and callable(value[0])):
            value = None if value is NOT_A_KEY else _node(key, value, graph_keys)
            if value is None:
                value = None if held is None else held.get(key)
                if value is None:
                    unmet.append(key)
                    return _MISSING
                held_only.add(key)
            if isinstance(value, DataNode):
                constants.append(len(keys))
        index[key] = found = len(keys)
        keys.append(key)
        nodes.append(value)
        return found

    def lookup_past_held(arg: Key, default: object) -> Any:
        return default if arg in held_only else index.get(arg, default)

    for key in targets:
        meet(key, index.get(key, NOT_A_KEY))
    if unmet:
        raise MissingKeyError(f"requested key(s) not in the graph: {_shown(unmet)}", unmet, unmet)
    lookup = index.get
    task = 0
    while task < len(nodes):  # ``nodes`` grows while it is walked
        node = nodes[task]
        ids: list[int] = []
        if type(node) is tuple:
            if held_only:
                lookup = lookup_past_held
            call = read_call(node, lookup, meet, ids)
            if call is None:
                ids.clear()
                node = convert_legacy_task(keys[task], node, graph_keys)
            else:
                node = call
            nodes[task] = node
        if type(node) is not Call:
            for dependency in node.dependencies:
                found = index.get(dependency, NOT_A_KEY)
                if type(found) is not int:  # met for the first time, or no key of the graph
                    found = meet(dependency, found)
                ids.append(found)
        if unmet:  # the walk raises below, naming them
            missing[keys[task]] = list(dict.fromkeys(unmet))
            unmet.clear()
        if ids and min(ids) <= task:  # an input numbered before (or as) the task that takes it
            reversible = False
        inputs.append(tuple(ids))
        task += 1
    if missing:
        described = "; ".join(
            f"{key!r} needs {_shown(deps)}" for key, deps in list(missing.items())[:_SHOWN_KEYS]
        )
        raise GraphError(
            f"{len(missing)} task(s) depend on keys that no task produces: {described}",
            list(missing),
            list(dict.fromkeys(key for deps in missing.values() for key in deps)),
        )
    return _Numbered(keys, nodes, inputs, [index[key] for key in targets], constants, reversible)


def _inline_constants(numbered: _Numbered) -> bytearray:
    """Fold each constant that feeds exactly one task, and is not requested, into that task.

    A constant needs no executor, no invocation and no storage round trip; folding it into its one
    user copies nothing. A tree reduction of numbers thus starts from its first additions. Returns
    a mark for each task folded away.
    """
    nodes, inputs = numbered.nodes, numbered.inputs
    folded = bytearray(len(nodes))
    constants = numbered.constants
    if not constants:  # a graph of tasks only: no need to count uses
        return folded
    uses = [0] * len(nodes)
    user = [0] * len(nodes)
    for task, ids in enumerate(inputs):
        for dependency in ids:
            uses[dependency] += 1
            user[dependency] = task
    requested = set(numbered.targets)
    for task in constants:
        if uses[task] == 1 and task not in requested:
            node, consumer = nodes[task], user[task]
            nodes[consumer] = nodes[consumer].substitute({numbered.keys[task]: node})
            inputs[consumer] = tuple(i for i in inputs[consumer] if i != task)
            folded[task] = 1
    return folded


def _topological_order(numbered: _Numbered, folded: bytearray) -> list[int]:
    """Kahn's algorithm on task numbers; a cycle is a :class:`GraphError` that names its keys.

    Where the walk's numbering reversed is already a topological order, that order is taken.
    """
    inputs = numbered.inputs
    if numbered.reversible:
        return [task for task in range(len(inputs) - 1, -1, -1) if not folded[task]]
    waiting = [len(ids) for ids in inputs]
    dependents = _dependents(inputs)
    order = [task for task, count in enumerate(waiting) if count == 0 and not folded[task]]
    for task in order:  # grows while it is walked
        for dependent in dependents[task]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                order.append(dependent)
    if len(order) < len(inputs) - sum(folded):
        done = set(order)
        remaining = [t for t in range(len(inputs)) if t not in done and not folded[t]]
        cycle = _find_cycle(remaining, inputs)
        keys = numbered.keys
        raise GraphError(
            f"the graph has a cycle: {' -> '.join(repr(keys[t]) for t in cycle)}",
            [keys[t] for t in cycle],
        )
    return order


def _find_cycle(remaining: list[int], inputs: list[tuple[int, ...]]) -> list[int]:
    """Walk inputs inside ``remaining`` (which holds only cyclic parts) until a task repeats."""
    inside = set(remaining)
    path: list[int] = []
    position: dict[int, int] = {}
    task = remaining[0]
    while task not in position:
        position[task] = len(path)
        path.append(task)
        task = next(d for d in inputs[task] if d in inside)
    return [*path[position[task] :], task]


def build_task_graph(
    dsk: Any, keys: Any, held: Mapping[Key, GraphNode] | None = None, max_tasks: int | None = None
) -> TaskGraph:
    """Normalise ``dsk`` and cull it to what ``keys`` (a key or nested lists of keys) need.

    ``held`` gives the tasks of keys that are not in ``dsk`` but persisted in the store (the keys
    of futures); the graph takes those it needs. A graph of more than ``max_tasks`` tasks is
    refused before any is converted (the client's plan budget). Tasks are converted as Dask's
    ``convert_legacy_graph`` converts them, but only those needed, and plain tuple tasks become
    lean :class:`~wukong.core.calls.Call` objects.

    Raises:
        MissingKeyError: a requested key is not in the graph.
        GraphError: a task depends on a key no task produces, the graph has a cycle, or it has
            more than ``max_tasks`` tasks.

    """
    mapping = as_mapping(dsk)
    if max_tasks is not None and len(mapping) > max_tasks:
        raise GraphError(
            f"the graph has {len(mapping):,} tasks: planning them would take about "
            f"{len(mapping) * PLAN_BYTES_PER_TASK / 1e9:.1f} GB of this client's memory, more than "
            f"its plan budget of {max_tasks * PLAN_BYTES_PER_TASK / 1e9:.1f} GB (the "
            "plan_memory_bytes setting, WUKONG_PLAN_MEMORY_BYTES). Raise the budget, or compute "
            "the collection in parts",
            [],
        )
    targets = list(dict.fromkeys(flatten(keys) if isinstance(keys, list) else [keys]))
    numbered = _number_needed(mapping, held or None, targets)
    folded = _inline_constants(numbered)
    if numbered.reversible and not any(folded):  # the walk's numbering stands: nothing to renumber
        last = len(numbered.keys) - 1
        return TaskGraph(
            keys=numbered.keys,
            nodes=numbered.nodes,
            dependencies=numbered.inputs,
            dependents=_dependents(numbered.inputs),
            results=numbered.targets,
            order=range(last, -1, -1),
        )
    order = _topological_order(numbered, folded)
    position = [0] * len(numbered.keys)
    for place, task in enumerate(order):
        position[task] = place
    inputs = numbered.inputs
    dependencies = [tuple([position[d] for d in inputs[task]]) for task in order]
    nodes, all_keys = numbered.nodes, numbered.keys
    return TaskGraph(
        keys=[all_keys[task] for task in order],
        nodes=[nodes[task] for task in order],
        dependencies=dependencies,
        dependents=_dependents(dependencies),
        results=[position[task] for task in numbered.targets],
        order=range(len(order)),
    )


def _dependents(dependencies: list[tuple[int, ...]]) -> list[list[int]]:
    """The tasks that take each task's output, in index order."""
    dependents: list[list[int]] = [[] for _ in dependencies]
    for task, ids in enumerate(dependencies):
        for dependency in ids:
            dependents[dependency].append(task)
    return dependents


def literal_results(graph: TaskGraph) -> dict[Key, Any]:
    """The requested keys whose tasks are plain values (no function to run), with those values."""
    return {
        graph.keys[task]: node.value
        for task in graph.results
        if isinstance(node := graph.nodes[task], DataNode)
    }


def pack_results(keys: Any, values: Mapping[Key, Any]) -> Any:
    """Arrange ``values`` in the nesting of ``keys``: lists of keys become tuples, as in Dask."""
    if isinstance(keys, list):
        return tuple(pack_results(k, values) for k in keys)
    return values[keys]
