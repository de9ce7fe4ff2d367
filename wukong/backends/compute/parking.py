"""Executors parked in a worker while they wait (delayed I/O), resumed when they ask to be.

An executor with nothing left to run but waits for other executors' outputs hands its worker a
continuation (:meth:`ExecutorContext.park`) and returns. The worker goes on with other invocations
and calls each continuation again when it is due; a continuation answers with the seconds until it
wants another look, or ``None`` once its executor has ended. Nothing nests: a worker runs one
executor step at a time, however many executors it holds.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

Resume = Callable[[], float | None]
"""A parked executor's next step: seconds until it wants the next one, or ``None`` once it ended."""

T = TypeVar("T")

MAX_PARKED = 32  # executors one worker holds while it runs others; more wait in place


class ParkingLot(Generic[T]):
    """The continuations one worker holds, each with a token (say, its payload's number)."""

    def __init__(self, capacity: int = MAX_PARKED):
        self._capacity = capacity
        self._due: list[tuple[float, int, T, Resume]] = []  # a heap, soonest first
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, token: object) -> bool:
        return any(entry[2] == token for entry in self._due)

    def park(self, token: T, resume: Resume, after: float = 0.0) -> bool:
        """Hold ``resume`` and call it in ``after`` seconds; ``False`` when the lot is full."""
        if len(self._due) >= self._capacity:
            return False
        heapq.heappush(self._due, (time.monotonic() + after, next(self._order), token, resume))
        return True

    def seconds_to_next(self) -> float | None:
        """How long until the next continuation is due (0: now), or ``None`` when none is held."""
        if not self._due:
            return None
        return max(0.0, self._due[0][0] - time.monotonic())

    def resume_due(self) -> list[T]:
        """Call every continuation that is due, once; return the tokens of those that ended."""
        ended = []
        now = time.monotonic()
        due = []
        while self._due and self._due[0][0] <= now:
            due.append(heapq.heappop(self._due))
        for _, order, token, resume in due:
            delay = resume()
            if delay is None:
                ended.append(token)
            else:
                heapq.heappush(self._due, (time.monotonic() + delay, order, token, resume))
        return ended

    def drain(self) -> list[T]:
        """Resume the continuations until every one has ended (the worker is stopping)."""
        ended = []
        while (wait := self.seconds_to_next()) is not None:
            time.sleep(wait)
            ended += self.resume_due()
        return ended
