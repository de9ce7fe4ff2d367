"""Turning task outputs, schedules and records into bytes and back.

Outputs and schedule pages go through the standard pickle (protocol 5, fast for NumPy arrays, and
functions by reference) and fall back to cloudpickle for what pickle cannot do (lambdas, local
functions and classes). Everything is read back with ``pickle.loads``.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

PROTOCOL = 5


def dumps(value: Any) -> bytes:
    """Serialize a task output or a schedule page."""
    try:
        return pickle.dumps(value, protocol=PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cloudpickle.dumps(value, protocol=PROTOCOL)


def dumps_code(value: Any) -> bytes:
    """Serialize by value what may hold code defined at run time (an exception, a task's function)."""
    return cloudpickle.dumps(value, protocol=PROTOCOL)


loads = pickle.loads
