"""Turning task outputs, schedules and records into bytes and back.

Outputs go through the standard pickle (protocol 5, fast for NumPy arrays) and fall back to
cloudpickle for what pickle cannot do (lambdas, local classes). Schedules always use cloudpickle,
since they hold user functions. Everything is read back with ``pickle.loads``.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

PROTOCOL = 5


def dumps(value: Any) -> bytes:
    """Serialize a task output."""
    try:
        return pickle.dumps(value, protocol=PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cloudpickle.dumps(value, protocol=PROTOCOL)


def dumps_code(value: Any) -> bytes:
    """Serialize something that holds user code (a schedule page, an exception)."""
    return cloudpickle.dumps(value, protocol=PROTOCOL)


loads = pickle.loads
