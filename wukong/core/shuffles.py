"""Dask's shuffles on executors that may share no filesystem.

Dask moves data between partitions in one of two ways when no distributed client runs: as tasks
(the data travel as task outputs, through wukong's stores), or on disk, through a partd directory
that one task makes in its process's temp dir and later tasks, in any process, write to and read
from. The disk way is Dask's default without a distributed client (``dask.bag`` groupby's too).

- Where executors share a filesystem (the local pool), a disk shuffle works, once its directory
  has one owner: partd removes a directory it made when the object that made it is collected, and
  an executor may keep that object (in its locality cache) long after other executors started
  using the directory. :func:`claim_directories` takes the removal away from partd; the job
  removes the directory when it ends (a :class:`~wukong.core.records.ScratchRecord` names it).
- Where they do not (Lambda), each executor's writes land in its own ``/tmp`` and the readers see
  nothing, so the answer would be short, silently. :func:`as_task_shuffles` rewrites the shuffles
  of a Dask expression that Dask chose to run on disk into task shuffles, unless the user chose
  ``dataframe.shuffle.method`` in Dask's config; :func:`disk_shuffle_tasks` finds what is left
  (a bag built for a disk groupby, a method the user chose), which the client refuses.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Any

import dask
from dask._task_spec import GraphNode, Task
from dask.core import flatten

from wukong.core.calls import Call
from wukong.core.graph import TaskGraph

SHUFFLE_METHOD_SETTING = "dataframe.shuffle.method"


def as_task_shuffles(dsk: Any, keys: Any) -> tuple[Any, Any]:
    """``(dsk, keys)`` with every disk shuffle of a Dask expression run as tasks instead.

    ``dsk`` is what Dask hands a scheduler: for collections, an optimised expression whose
    shuffles are already chosen. Swapping a ``DiskShuffle`` for a ``TaskShuffle`` with the same
    operands changes the names of everything downstream of it, so the requested keys are mapped
    to the new expression's by position. Anything else, or a method the user set in Dask's
    config, is returned as it is.
    """
    shuffle_module = sys.modules.get("dask.dataframe.dask_expr._shuffle")
    walk = getattr(dsk, "walk", None)
    if shuffle_module is None or walk is None or dask.config.get(SHUFFLE_METHOD_SETTING, None):
        return dsk, keys
    disk_shuffles = [expr for expr in walk() if type(expr) is shuffle_module.DiskShuffle]
    if not disk_shuffles:
        return dsk, keys
    rewritten = dsk
    for shuffle in disk_shuffles:
        rewritten = rewritten.substitute(shuffle, shuffle_module.TaskShuffle(*shuffle.operands))
    old_keys = _flat(keys)
    new_keys = list(flatten(rewritten.__dask_keys__()))
    if len(new_keys) != len(old_keys):
        return dsk, keys  # not the expression these keys came from: leave it to the refusal
    renamed = dict(zip(old_keys, new_keys, strict=True))
    return rewritten, _renamed(keys, renamed)


def _renamed(keys: Any, renamed: dict[Hashable, Hashable]) -> Any:
    if isinstance(keys, list):
        return [_renamed(key, renamed) for key in keys]
    return renamed[keys]


def by_requested_key(requested: Any, computed: Any, values: dict[Hashable, Any]) -> dict[Hashable, Any]:
    """``values`` (by ``computed`` key) by the key the caller asked for, where a rewrite renamed them."""
    if computed is requested:
        return values
    pairs = zip(_flat(requested), _flat(computed), strict=True)
    return {asked: values[key] for asked, key in pairs}


def _flat(keys: Any) -> list[Hashable]:
    return list(flatten(keys)) if isinstance(keys, list) else [keys]


def disk_shuffle_tasks(graph: TaskGraph) -> list[Hashable]:
    """The keys of tasks that make a partd directory for a disk shuffle (none unless partd is loaded).

    Such a task has no inputs, so only the graph's roots are looked at.
    """
    if "partd" not in sys.modules:
        return []  # nothing in this process could have built such a task
    return [
        graph.keys[task]
        for task, inputs in enumerate(graph.dependencies)
        if not inputs and _makes_partd(graph.nodes[task])
    ]


def _makes_partd(node: GraphNode | Call) -> bool:
    """Whether a task calls partd, or hands partd's classes to what it calls (``apply(partd.File)``)."""
    if isinstance(node, Call):
        return _is_partd(node.func) or any(_is_partd(argument) for argument in node.args)
    if not isinstance(node, Task):
        return False
    if _is_partd(node.func):
        return True
    for argument in [*node.args, *node.kwargs.values()]:
        if _makes_partd(argument) if isinstance(argument, GraphNode) else _is_partd(argument):
            return True
    return False


def _is_partd(function: Any) -> bool:
    if not callable(function):
        return False
    module = getattr(function, "__module__", None) or type(function).__module__
    return module.startswith("partd") or type(function).__name__ == "maybe_buffered_partd"


def claim_directories(value: Any) -> list[str]:
    """Stop partd from removing the directories a task's output made; return their paths.

    ``value`` is a partd object (``partd.Python(partd.File())`` and its wrappers). Its innermost
    ``File`` removes its directory when collected if it made the directory itself; from here on
    the job does, when it ends.
    """
    paths = []
    stack = [value]
    while stack:
        part = stack.pop()
        if type(part).__name__ == "File" and hasattr(part, "path"):
            part._explicitly_given_path = True  # partd's own flag: "not mine to remove"
            paths.append(part.path)
        stack += [getattr(part, name) for name in ("partd", "fast", "slow") if hasattr(part, name)]
    return paths


def refusal(keys: list[Hashable], compute: str) -> str:
    """The message for a graph that shuffles on disk where executors share no filesystem."""
    shown = ", ".join(repr(key) for key in keys[:3])
    return (
        f"task {shown} starts a shuffle on disk (a partd directory), but this job's executors share "
        f"no filesystem ({compute}), so each would see only its own part and the answer would be short. "
        f"Shuffle as tasks: dask.config.set({{{SHUFFLE_METHOD_SETTING!r}: 'tasks'}}) before the "
        "collection is built (dask.bag's groupby reads it then), or groupby(..., shuffle='tasks')"
    )
