"""What every executor process must share with the others and the client: a hash seed, and versions.

Python salts ``hash()`` of strings and bytes with a random seed per process. Dask hashes keys to
partitions in places (``dask.bag`` groupby, for one), so two executors with different seeds send
equal keys to different partitions, and the answer is silently wrong. Dask's ``processes``
scheduler fixes ``PYTHONHASHSEED`` for its workers for this reason; wukong does the same for every
backend whose executors are processes of their own (local pool workers, Lambda functions), and
each executor checks the seed it was started with before it runs anything.

The seed is the client's own when the client was started with a fixed one (so executors hash as
the client does), else Dask's (so partitions come out as under Dask's ``processes`` scheduler).

Functions travel between client and executors pickled: by reference to their module when it can be
imported, as bytecode when it cannot (a function defined in ``__main__``), and bytecode runs only on
the Python minor version that made it. A platform that runs an install of its own (a Lambda
function) is stamped with the versions it was built with (:func:`version_stamp`), and the client
compares them with its own before anything runs.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping

from wukong.errors import ConfigError

HASH_SEED_VARIABLE = "PYTHONHASHSEED"
DASK_HASH_SEED = "6640"  # the seed dask.multiprocessing gives its workers

STAMP_VARIABLE = "WUKONG_STAMP"
STAMPED_PACKAGES = ("wukong", "dask", "cloudpickle", "numpy")  # what pickled tasks depend on

_environment_lock = threading.Lock()


def hash_seed() -> str:
    """The ``PYTHONHASHSEED`` executors start with: the client's if it is a number, else Dask's."""
    own = os.environ.get(HASH_SEED_VARIABLE, "")
    return own if own.isdigit() else DASK_HASH_SEED


def executor_environment() -> dict[str, str]:
    """The environment variables a platform must give every executor process it starts."""
    return {HASH_SEED_VARIABLE: hash_seed()}


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` in this process's environment while a child process starts, then restore it.

    A spawned process takes its environment from its parent at start; this is the only way to give
    one variables of its own through :mod:`multiprocessing`. The lock keeps two starts from
    restoring each other's values.
    """
    with _environment_lock:
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def check_hash_seed(expected: str | None) -> None:
    """Refuse to run in a process started without the job's hash seed (``None``: nothing to check).

    Raises:
        ConfigError: this process hashes strings with another seed than the job's other executors.

    """
    if expected is None:
        return
    actual = os.environ.get(HASH_SEED_VARIABLE)
    if actual != expected:
        started = "without PYTHONHASHSEED" if actual is None else f"with PYTHONHASHSEED={actual}"
        raise ConfigError(
            f"this executor's process was started {started}, but the job's executors hash with "
            f"PYTHONHASHSEED={expected}; results partitioned by hash (dask.bag groupby) would be "
            "wrong. Start executors with that seed: redeploy the Lambda function with "
            "`wukong lambda deploy`, or give a custom platform's processes the variable"
        )


def version_stamp(python: str | None = None, **versions: str) -> dict[str, str]:
    """Python's minor version and those of the packages tasks are pickled against.

    By default this process's own; ``python`` and ``versions`` (by package name) say what another
    install holds.
    """
    stamp = {"python": python or f"{sys.version_info.major}.{sys.version_info.minor}"}
    for name in STAMPED_PACKAGES:
        stamp[name] = versions.get(name) or importlib.metadata.version(name)
    return stamp


def encode_stamp(stamp: dict[str, str]) -> str:
    """The stamp as the value of :data:`STAMP_VARIABLE`."""
    return json.dumps(stamp, sort_keys=True)


def stamp_differences(deployed: str | None, expected: dict[str, str]) -> list[str]:
    """What differs between a platform's stamp (the variable's value, or ``None``) and ``expected``."""
    if not deployed:
        return ["it carries no version stamp (deployed by an older wukong, or by hand)"]
    theirs = json.loads(deployed)
    return [
        f"{name} {theirs.get(name, 'unknown')} there, {version} here"
        for name, version in expected.items()
        if theirs.get(name) != version
    ]
