"""The task stream's layout, shared by the HTML page and the PNG: lanes, colours, time ticks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from wukong.monitoring.timeline import TaskRecord

COLOURS = {"read": "#4e79a7", "compute": "#59a14f", "write": "#f28e2b", "invoke": "#e15759"}
"""One colour per phase (Tableau 10, readable by most colour-blind people)."""


@dataclass
class Lane:
    """One executor's row: its tasks in the order they ran."""

    executor: int
    tasks: list[TaskRecord] = field(default_factory=list)


def lanes(tasks: Sequence[TaskRecord]) -> list[Lane]:
    """One lane per executor, ordered by when each executor started."""
    by_executor: dict[int, Lane] = {}
    for record in sorted(tasks, key=lambda record: record.started):
        by_executor.setdefault(record.executor, Lane(record.executor)).tasks.append(record)
    return list(by_executor.values())


def ticks(span: float, most: int = 10) -> list[float]:
    """Round moments from 0 to ``span`` seconds, at most ``most`` + 1 of them."""
    raw = span / most
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [round(i * step, 9) for i in range(int(span / step) + 1)]
