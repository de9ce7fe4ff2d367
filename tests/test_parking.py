"""The parking lot a worker keeps its waiting executors in: due order, capacity, draining."""

from __future__ import annotations

import time

from wukong.backends.compute.parking import ParkingLot


class Waiter:
    """A continuation that wants ``looks`` more looks, ``delay`` seconds apart."""

    def __init__(self, looks: int, delay: float = 0.0):
        self.looks, self.delay, self.calls = looks, delay, 0

    def __call__(self) -> float | None:
        self.calls += 1
        self.looks -= 1
        return None if self.looks <= 0 else self.delay


def test_only_due_continuations_are_resumed_and_those_that_end_are_named():
    lot: ParkingLot[str] = ParkingLot()
    soon, late = Waiter(1), Waiter(1)
    assert lot.park("soon", soon) and lot.park("late", late, after=60)
    assert lot.seconds_to_next() == 0.0
    assert lot.resume_due() == ["soon"]
    assert (soon.calls, late.calls) == (1, 0)
    assert "late" in lot and "soon" not in lot and len(lot) == 1
    assert 59 < lot.seconds_to_next() <= 60


def test_a_continuation_that_asks_for_more_comes_back_after_its_delay():
    lot: ParkingLot[int] = ParkingLot()
    waiter = Waiter(3, delay=0.05)
    lot.park(7, waiter)
    assert lot.resume_due() == []
    assert lot.resume_due() == []  # not due again yet
    assert waiter.calls == 1
    started = time.monotonic()
    assert lot.drain() == [7]
    assert waiter.calls == 3 and time.monotonic() - started >= 0.09
    assert lot.seconds_to_next() is None


def test_a_full_lot_declines_and_the_executor_waits_in_place():
    lot: ParkingLot[int] = ParkingLot(capacity=2)
    assert lot.park(1, Waiter(1)) and lot.park(2, Waiter(1))
    assert not lot.park(3, Waiter(1))
    assert sorted(lot.drain()) == [1, 2]
