"""Dask's local callbacks (``dask.callbacks.Callback``: ``ProgressBar``, ``Profiler``, your own) on a job.

Dask's local schedulers call ``start(dsk)`` and ``start_state(dsk, state)`` before the first task,
``pretask(key, dsk, state)`` and ``posttask(key, result, dsk, state, worker_id)`` around each task,
and ``finish(dsk, state, errored)`` at the end. A wukong job calls the same, at the job's bounds and
as each executor's task records reach the client, which is when that executor ends, not when each
of its tasks does: ``pretask`` and ``posttask`` come in a burst per executor, in the order the
executor ran its tasks. ``result`` is ``None`` (outputs stay in the executors and the store), and
``worker_id`` names the executor (the task it was invoked for). ``state`` has the keys of Dask's own
(``waiting``, ``ready``, ``running``, ``finished``, ``dependencies``, ``dependents``, ``cache``), kept
as the job advances, so ``ProgressBar`` draws the job's progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dask.callbacks import Callback, normalize_callback, unpack_callbacks

from wukong.core.calls import Call
from wukong.core.graph import TaskGraph
from wukong.monitoring.timeline import TaskRecord

CallbackTuple = tuple[Any, ...]


def requested(callbacks: Sequence[Any] | None) -> list[CallbackTuple]:
    """The callbacks a compute runs with: those it was given, else the active ones.

    Like Dask's own schedulers, a job takes the active callbacks for itself (so a compute inside
    a task does not call them again) until :func:`release` gives them back.
    """
    if callbacks is not None:
        return [normalize_callback(callback) for callback in callbacks]
    taken = list(Callback.active)
    Callback.active.clear()
    return taken


def release(taken: Sequence[CallbackTuple], given: bool) -> None:
    """Make the active callbacks :func:`requested` took active again (nothing, if they were given)."""
    if not given:
        Callback.active.update(taken)


class DaskCallbacks:
    """Calls one job's callbacks; see the module's text for when and with what."""

    def __init__(self, callbacks: Sequence[CallbackTuple], graph: TaskGraph):
        self._start, self._start_state, self._pretask, self._posttask, self._finish = unpack_callbacks(
            callbacks
        )
        self._graph = graph
        keys = graph.keys
        # Callbacks get Dask's own task objects, as under Dask's schedulers.
        self.dsk = {
            key: node.as_task(key) if isinstance(node, Call) else node
            for key, node in zip(keys, graph.nodes, strict=True)
        }
        dependencies = zip(keys, graph.dependencies, strict=True)
        dependents = zip(keys, graph.dependents, strict=True)
        self.state: dict[str, Any] = {
            "dependencies": {key: {keys[d] for d in deps} for key, deps in dependencies},
            "dependents": {key: {keys[d] for d in deps} for key, deps in dependents},
            "waiting": set(keys),
            "ready": set(),
            "running": set(),
            "finished": set(),
            "released": set(),
            "waiting_data": {},
            "cache": {},
        }
        self._started = self._ended = False

    def start(self) -> None:
        """The job is about to start."""
        self._started = True
        for start in self._start:
            start(self.dsk)
        for start_state in self._start_state:
            start_state(self.dsk, self.state)

    def tasks_ended(self, records: Iterable[TaskRecord]) -> None:
        """An executor's task records arrived: each task ran (a task already seen is skipped)."""
        if self._ended:
            return
        state, keys = self.state, self._graph.keys
        for record in records:
            key = keys[record.task]
            if key in state["finished"]:
                continue  # a repeated delivery, or a speculative backup, ran it too
            state["waiting"].discard(key)
            state["running"].add(key)
            for pretask in self._pretask:
                pretask(key, self.dsk, state)
            state["running"].discard(key)
            state["finished"].add(key)
            for posttask in self._posttask:
                posttask(key, None, self.dsk, state, record.executor)

    def finish(self, errored: bool) -> None:
        """The job ended (its results are in, or it failed)."""
        if self._ended or not self._started:
            return
        self._ended = True
        for finish in self._finish:
            finish(self.dsk, self.state, errored)
