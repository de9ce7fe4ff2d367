"""Turning task outputs, schedules and records into bytes and back.

Outputs and schedule pages go through the standard pickle (protocol 5, fast for NumPy arrays, and
functions by reference) and fall back to cloudpickle for what pickle cannot do (lambdas, local
functions and classes) and for what it would get wrong: functions and classes of the user's script
(``__main__``), which a worker that did not run the script (a Lambda function) cannot find by
reference. Everything is read back with ``pickle.loads``.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from typing import Any

import cloudpickle
from dask._task_spec import Alias, Task, TaskRef

PROTOCOL = 5


_SCRIPT = b"__main__"
_SCRIPT_SCAN_BYTES = 4 << 20  # bigger blobs are data (array blocks), not worth the scan


def dumps(value: Any) -> bytes:
    """Serialize a task output."""
    try:
        blob = pickle.dumps(value, protocol=PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cloudpickle.dumps(value, protocol=PROTOCOL)
    return _by_value_if_scripted(value, blob)


def dumps_page(value: Any) -> bytes:
    """Serialize a schedule page: as :func:`dumps`, with Dask's ``Task`` nodes in a short form.

    Dask pickles a ``Task`` as every one of its slots, through a Python method, its dependencies
    (a set of keys) included; the short form is its key, function, arguments and keyword
    arguments, and loading it calls ``Task`` again, which works its dependencies out. A page of a
    ``dask.array`` reduction pickles in half the time.
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=PROTOCOL)
    # Copied at each call, so that what registers with copyreg later is honoured too.
    pickler.dispatch_table = {**copyreg.dispatch_table, Task: _task_parts}
    try:
        pickler.dump(value)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cloudpickle.dumps(value, protocol=PROTOCOL)
    return _by_value_if_scripted(value, buffer.getvalue())


def _by_value_if_scripted(value: Any, blob: bytes) -> bytes:
    if len(blob) < _SCRIPT_SCAN_BYTES and _SCRIPT in blob:
        return cloudpickle.dumps(value, protocol=PROTOCOL)  # it names the script's own objects
    return blob


def task_from_parts(
    key: Any, func: Any, args: tuple, kwargs: dict, data_producer: bool, refs: tuple[int, ...] = ()
) -> Task:
    """Make Dask's ``Task`` again from the parts :func:`dumps_page` keeps.

    The arguments at positions ``refs`` are keys, which become references (``TaskRef``) again.
    """
    if refs:
        args = list(args)  # type: ignore[assignment]
        for position in refs:
            args[position] = TaskRef(args[position])  # type: ignore[index]
    return Task(key, func, *args, _data_producer=data_producer, **kwargs)


def _task_parts(task: Task) -> tuple[Any, ...]:
    # A reference argument travels as its key and position: pickled as an object of its own, each
    # would cost the pickler a call of Python code (four a task in a dask.array sum's tree).
    args = task.args
    refs = tuple([position for position, arg in enumerate(args) if type(arg) in _REFERENCES])
    if refs:
        args = tuple(
            [arg.key if type(arg) is TaskRef else arg.target if type(arg) is Alias else arg for arg in args]
        )
    return task_from_parts, (task.key, task.func, args, task.kwargs, task.data_producer, refs)


# An Alias argument computes what a TaskRef to its target computes (its value) and has the same
# dependency, so both travel as the key they name.
_REFERENCES = frozenset({TaskRef, Alias})


def dumps_code(value: Any) -> bytes:
    """Serialize by value what may hold code defined at run time (an exception, a task's function)."""
    return cloudpickle.dumps(value, protocol=PROTOCOL)


def measure(value: Any) -> int:
    """The serialized size of ``value``, without copying its big buffers.

    Pickle protocol 5 hands large contiguous buffers (NumPy arrays' data) to a callback instead of
    copying them into the stream, so this costs a walk of the object, not a copy of its bytes.
    """
    buffers: list[pickle.PickleBuffer] = []
    try:
        header = pickle.dumps(value, protocol=PROTOCOL, buffer_callback=buffers.append)
    except (pickle.PicklingError, TypeError, AttributeError):
        return len(dumps_code(value))
    return len(header) + sum(buffer.raw().nbytes for buffer in buffers)


def measure_kept(value: Any) -> int:
    """The size of an object a store keeps as is, for metrics and models: 0 if it cannot be pickled.

    Such an object is never serialized, so a size it cannot have must not fail the task.
    """
    try:
        return measure(value)
    except Exception:
        return 0


loads = pickle.loads
