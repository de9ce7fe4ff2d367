"""Plain calls: the lean form of the commonest Dask task, a tuple ``(func, *args)`` of keys and values.

Dask turns a legacy tuple task into a :class:`~dask._task_spec.Task` whose key arguments become
``Alias`` nodes, three to five Python objects a task, each with its own frozenset of dependencies;
at a million tasks, building and pickling them is most of the time the client spends before the
first invocation. A :class:`Call` holds the function, the argument tuple as given, and the
positions of the arguments that are keys: one object a task, pickled as three fields.

:func:`plain_call` (and :func:`read_call`, with which the graph's walk reads tasks) takes only the
tuples whose meaning is certain without Dask's conversion: a callable, then arguments that are keys
of the graph or plain values (not containers, dicts, task nodes, futures or subclasses of the key
types, which Dask converts). What a key is is decided as ``dask._task_spec.convert_legacy_task``
decides it (an ``int``, ``float``, ``str`` or ``tuple`` found among the graph's keys), so the call
computes what Dask's task would::

    >>> from operator import add
    >>> call = plain_call((add, "x", 10), {"x", "y"})
    >>> call.dependencies, call({"x": 1})
    (('x',), 11)
    >>> plain_call((add, ["x"], 10), {"x"}) is None  # a list may hold keys: Dask converts it
    True
"""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable, Mapping
from itertools import combinations
from typing import Any

from dask._task_spec import DataNode, GraphNode, Task, TaskRef, _is_dask_future

# The key positions of calls of up to four arguments, one tuple each: shared by the tasks that have
# them instead of one tuple a task (a million tuples fewer to keep, free and pickle at a million).
_SHARED_REFS = {refs: refs for size in range(5) for refs in combinations(range(4), size)}
_MAY_HOLD_KEYS = (list, tuple, set, frozenset, dict, GraphNode, int, float, str)
PLAIN_KEY_TYPES = frozenset({int, float, str, tuple, bool})  # keys when the graph has them


class Call:
    """``func(*args)``, where the arguments at positions ``refs`` are keys replaced by their values.

    Quacks like the part of Dask's ``GraphNode`` wukong uses: ``dependencies``, a call with the
    inputs' values by key, and ``substitute`` of constants folded in.
    """

    __slots__ = ("args", "func", "refs")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...], refs: tuple[int, ...]):
        self.func, self.args, self.refs = func, args, refs

    def __reduce__(self) -> tuple[Any, ...]:
        return Call, (self.func, self.args, self.refs)

    def __repr__(self) -> str:
        name = getattr(self.func, "__name__", type(self.func).__name__)
        return f"<Call {name}{self.args!r}>"

    @property
    def dependencies(self) -> tuple[Hashable, ...]:
        """The keys this call reads, once each, in argument order."""
        args, refs = self.args, self.refs
        if len(refs) == 1:
            return (args[refs[0]],)
        return tuple(dict.fromkeys([args[i] for i in refs]))

    def __call__(self, values: Mapping[Hashable, Any]) -> Any:
        """Call the function with each key argument replaced by its value from ``values``."""
        args = self.args
        if not self.refs:
            return self.func(*args)
        given = list(args)
        for position in self.refs:
            given[position] = values[args[position]]
        return self.func(*given)

    def substitute(self, constants: Mapping[Hashable, DataNode]) -> Call:
        """A copy with the key arguments found in ``constants`` replaced by the constants' values."""
        args = list(self.args)
        refs = []
        for position in self.refs:
            constant = constants.get(args[position])
            if constant is None:
                refs.append(position)
            else:
                args[position] = constant.value
        return Call(self.func, tuple(args), tuple(refs))

    def as_task(self, key: Hashable) -> Task:
        """The Dask task that computes the same (for code that expects Dask's nodes: callbacks)."""
        refs = set(self.refs)
        args = (TaskRef(a) if i in refs else a for i, a in enumerate(self.args))
        return Task(key, self.func, *args)


def call_with_collection(func: Callable[[Any], Any], collection_type: type, *items: Any) -> Any:
    """``func(collection_type(items))``: a function of one list (tuple, set) of task outputs.

    As a :class:`Call`'s function, with the items' keys for arguments, it is the lean form of
    Dask's commonest fan-in task, ``(func, [key, key, ...])``.
    """
    return func(collection_type(items))


def plain_call(task: Any, keys: Container[Hashable]) -> Call | None:
    """``task`` as a :class:`Call` if it is a plain tuple task of the graph with ``keys``; else ``None``."""
    if type(task) is not tuple or not task or not callable(task[0]):
        return None

    def lookup(arg: Any, default: Any) -> Any:
        return 0 if arg in keys else default

    return read_call(task, lookup, lambda key, entry: 0, [])


NOT_A_KEY = object()
"""What a ``lookup`` given to :func:`read_call` returns for an argument that is no key of the graph."""


def read_call(
    task: tuple,
    lookup: Callable[[Any, Any], Any],
    meet: Callable[[Any, Any], int],
    inputs: list[int],
) -> Call | None:
    """A tuple task ``(callable, *args)`` as a :class:`Call`; ``None`` if Dask must convert it.

    ``lookup(arg, NOT_A_KEY)`` tells a key of the graph from a plain value: ``NOT_A_KEY`` for a
    value, the key's number (an ``int``) once it has one, or else what ``meet(arg, entry)`` takes
    to number it; it may raise ``TypeError`` for an unhashable tuple. The graph's walk passes its
    key table's ``get``, so telling keys from values costs no Python call. The numbers of the key
    arguments go into ``inputs``, once each, in argument order.
    """
    args = task[1:]
    refs = []
    for position, arg in enumerate(args):
        kind = type(arg)
        if kind in PLAIN_KEY_TYPES:  # the common case: an exact key type, key or plain value
            try:
                number = lookup(arg, NOT_A_KEY)
            except TypeError:  # an unhashable tuple: Dask converts what it holds
                return None
            if number is NOT_A_KEY:
                if kind is tuple:  # a tuple that is no key may hold keys
                    return None
                continue
            if type(number) is not int:
                number = meet(arg, number)
            refs.append(position)
            if number not in inputs:
                inputs.append(number)
        elif isinstance(arg, _MAY_HOLD_KEYS) or _is_dask_future(arg):
            # Containers, task nodes and futures may hold keys, and so may subclasses of the key
            # types (a named tuple, a NumPy float equal to a key); anything else is a plain value.
            return None
    key_positions = tuple(refs)
    return Call(task[0], args, _SHARED_REFS.get(key_positions, key_positions))
