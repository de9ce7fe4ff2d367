"""What an executor keeps in memory: outputs it made, for the tasks it runs next.

An entry is *pinned* while tasks queued in this executor still need it; those are never dropped (a
task about to run must find its inputs). Once no queued task needs it, an entry that a later task of
this executor may still use (a dependent whose counter it set without completing it: this executor
may complete it later, through another input) stays while the byte budget allows, least recently
used first out; any other entry is dropped at once. A budget of zero keeps only pinned entries,
which is the executor without a locality cache: the output of the task it becomes, nothing else.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MISSING = object()
"""What :meth:`LocalityCache.get` returns for a task it does not hold."""


@dataclass(slots=True)
class _Entry:
    value: Any
    size: int
    pins: int
    reusable: bool


class LocalityCache:
    """Outputs held by one executor, by task index, within ``budget`` bytes of unpinned entries."""

    def __init__(self, budget: int):
        self.budget = budget
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._unpinned_bytes = 0

    def hold(self, task: int, value: Any, size: int, pins: int, reusable: bool) -> None:
        """Keep ``task``'s output for ``pins`` queued tasks (and later ones, if ``reusable``)."""
        self._entries[task] = _Entry(value, size, pins, reusable)
        if pins == 0:
            self._unpin(task)

    def pin(self, task: int, value: Any) -> None:
        """Keep ``task``'s output for one more queued task (holding it again if it was dropped)."""
        entry = self._entries.get(task)
        if entry is None:
            self._entries[task] = _Entry(value, 0, 1, False)
            return
        if entry.pins == 0:
            self._unpinned_bytes -= entry.size
        entry.pins += 1

    def get(self, task: int) -> Any:
        """``task``'s output, or :data:`MISSING`."""
        entry = self._entries.get(task)
        if entry is None:
            return MISSING
        self._entries.move_to_end(task)
        return entry.value

    def used(self, task: int) -> None:
        """A queued task that needed ``task``'s output has run."""
        entry = self._entries.get(task)
        if entry is None or entry.pins == 0:
            return
        entry.pins -= 1
        if entry.pins == 0:
            self._unpin(task)

    def _unpin(self, task: int) -> None:
        entry = self._entries[task]
        if not entry.reusable or entry.size > self.budget:
            del self._entries[task]
            return
        self._unpinned_bytes += entry.size
        for oldest in list(self._entries):
            if self._unpinned_bytes <= self.budget:
                break
            candidate = self._entries[oldest]
            if candidate.pins == 0:
                self._unpinned_bytes -= candidate.size
                del self._entries[oldest]

    def __contains__(self, task: int) -> bool:
        return task in self._entries

    def __len__(self) -> int:
        return len(self._entries)
