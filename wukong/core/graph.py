"""Graph input: from whatever Dask hands a scheduler to an indexed, culled, acyclic task graph.

Dask gives a scheduler an expression object (``x.compute()`` in Dask 2025+), a ``HighLevelGraph``,
or a plain dict whose values are tuple tasks, literals, or the task-spec objects ``Task``,
``Alias`` and ``DataNode``. :func:`build_task_graph` turns each of these into one form, as
``dask.local.get_async`` does (``__dask_graph__`` then ``convert_legacy_graph``), keeps only what the
requested keys need, folds constants used once into their user, and checks for missing dependencies
and cycles before anything runs.

The result names tasks by index, in topological order (every task after its dependencies)::

    >>> from operator import add
    >>> g = build_task_graph({"x": 1, "y": (add, "x", 10), "z": (add, "y", "x")}, "z")
    >>> g.keys, [sorted(inputs) for inputs in g.dependencies], g.results
    (['x', 'y', 'z'], [[], [0], [0, 1]], [2])
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dask._task_spec import DataNode, GraphNode, convert_legacy_graph
from dask.core import flatten

from wukong.errors import GraphError, MissingKeyError

Key = Hashable

_SHOWN_KEYS = 10


@dataclass(slots=True)
class TaskGraph:
    """A task graph ready to partition.

    Attributes:
        keys: the Dask key of each task, by index, dependencies before dependents.
        nodes: the executable node of each task (``node(inputs)`` computes it).
        dependencies: the indices of each task's inputs.
        dependents: the indices of the tasks that take each task's output.
        results: the indices of the requested keys, without repeats.

    """

    keys: list[Key]
    nodes: list[GraphNode]
    dependencies: list[tuple[int, ...]]
    dependents: list[list[int]]
    results: list[int]

    def __len__(self) -> int:
        return len(self.keys)


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


def _needed_nodes(nodes: Mapping[Key, GraphNode], targets: list[Key]) -> dict[Key, GraphNode]:
    """The requested tasks and everything they depend on; missing dependencies are an error."""
    needed: dict[Key, GraphNode] = {}
    missing: dict[Key, list[Key]] = {}
    stack = list(targets)
    while stack:
        key = stack.pop()
        if key in needed:
            continue
        node = needed[key] = nodes[key]
        for dependency in node.dependencies:
            if dependency not in nodes:
                missing.setdefault(key, []).append(dependency)
            elif dependency not in needed:
                stack.append(dependency)
    if missing:
        described = "; ".join(
            f"{key!r} needs {_shown(deps)}" for key, deps in list(missing.items())[:_SHOWN_KEYS]
        )
        raise GraphError(
            f"{len(missing)} task(s) depend on keys that no task produces: {described}",
            list(missing),
            list(dict.fromkeys(key for deps in missing.values() for key in deps)),
        )
    return needed


def _inline_constants(needed: dict[Key, GraphNode], targets: list[Key]) -> None:
    """Fold each constant that feeds exactly one task, and is not requested, into that task.

    A constant needs no executor, no invocation and no storage round trip; folding it into its one
    user copies nothing. A tree reduction of numbers thus starts from its first additions.
    """
    uses: dict[Key, int] = {}
    user: dict[Key, Key] = {}
    for key, node in needed.items():
        for dependency in node.dependencies:
            uses[dependency] = uses.get(dependency, 0) + 1
            user[dependency] = key
    requested = set(targets)
    for key, node in list(needed.items()):
        if isinstance(node, DataNode) and uses.get(key) == 1 and key not in requested:
            consumer = user[key]
            needed[consumer] = needed[consumer].substitute({key: node})
            del needed[key]


def _find_cycle(remaining: Mapping[Key, GraphNode]) -> list[Key]:
    """Walk dependencies inside ``remaining`` (which holds only cyclic parts) until a key repeats."""
    start = next(iter(remaining))
    path: list[Key] = []
    position: dict[Key, int] = {}
    key = start
    while key not in position:
        position[key] = len(path)
        path.append(key)
        key = next(d for d in remaining[key].dependencies if d in remaining)
    return [*path[position[key] :], key]


def _topological_order(needed: dict[Key, GraphNode]) -> list[Key]:
    """Kahn's algorithm; a cycle is a :class:`GraphError` that names its keys."""
    waiting = {key: len(node.dependencies) for key, node in needed.items()}
    dependents: dict[Key, list[Key]] = {}
    for key, node in needed.items():
        for dependency in node.dependencies:
            dependents.setdefault(dependency, []).append(key)
    order = [key for key, count in waiting.items() if count == 0]
    for key in order:  # grows while it is walked
        for dependent in dependents.get(key, ()):
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                order.append(dependent)
    if len(order) < len(needed):
        done = set(order)
        cycle = _find_cycle({k: n for k, n in needed.items() if k not in done})
        raise GraphError(f"the graph has a cycle: {' -> '.join(map(repr, cycle))}", cycle)
    return order


def build_task_graph(dsk: Any, keys: Any, held: Mapping[Key, GraphNode] | None = None) -> TaskGraph:
    """Normalise ``dsk`` and cull it to what ``keys`` (a key or nested lists of keys) need.

    ``held`` gives the tasks of keys that are not in ``dsk`` but persisted in the store (the keys
    of futures); the graph takes those it needs.

    Raises:
        MissingKeyError: a requested key is not in the graph.
        GraphError: a task depends on a key no task produces, or the graph has a cycle.

    """
    nodes: Mapping[Key, GraphNode] = convert_legacy_graph(as_mapping(dsk))
    if held:
        nodes = ChainMap(nodes, held)
    targets = list(dict.fromkeys(flatten(keys) if isinstance(keys, list) else [keys]))
    absent = [key for key in targets if key not in nodes]
    if absent:
        raise MissingKeyError(f"requested key(s) not in the graph: {_shown(absent)}", absent, absent)
    needed = _needed_nodes(nodes, targets)
    _inline_constants(needed, targets)
    order = _topological_order(needed)
    index = {key: i for i, key in enumerate(order)}
    dependencies = [tuple(index[d] for d in needed[key].dependencies) for key in order]
    dependents: list[list[int]] = [[] for _ in order]
    for task, inputs in enumerate(dependencies):
        for dependency in inputs:
            dependents[dependency].append(task)
    return TaskGraph(
        keys=order,
        nodes=[needed[key] for key in order],
        dependencies=dependencies,
        dependents=dependents,
        results=[index[key] for key in targets],
    )


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
