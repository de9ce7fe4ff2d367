"""wukong: a fast serverless DAG engine for Dask graphs.

Example::

    import dask.array as da, wukong
    (da.ones((100, 100), chunks=50) + 1).sum().compute(scheduler=wukong.get)   # 20000.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wukong.core.defaults import register_scheduler_name
from wukong.errors import (
    ComputeError,
    ConfigError,
    GraphError,
    JobEndedError,
    JobLostError,
    JobTimeoutError,
    MissingKeyError,
    SerializationError,
    StorageError,
    TaskError,
    WukongError,
)
from wukong.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from wukong.config import WukongConfig, load_config
    from wukong.core.client import Client, close_default_client, get
    from wukong.core.futures import Future
    from wukong.monitoring.report import JobReport

__version__ = "0.1.0"

# The client's names load on first use: an executor imports ``wukong`` (for its errors and
# hooks) on every cold start and needs neither the client nor the settings' pydantic models.
_LAZY = {
    "Client": "wukong.core.client",
    "close_default_client": "wukong.core.client",
    "get": "wukong.core.client",
    "Future": "wukong.core.futures",
    "JobReport": "wukong.monitoring.report",
    "WukongConfig": "wukong.config",
    "load_config": "wukong.config",
}


register_scheduler_name()


def __getattr__(name: str) -> Any:
    """Import a client-side name from its module the first time it is read (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wukong' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Client",
    "ComputeError",
    "ConfigError",
    "Future",
    "GraphError",
    "JobEndedError",
    "JobLostError",
    "JobReport",
    "JobTimeoutError",
    "MissingKeyError",
    "SerializationError",
    "StorageError",
    "TaskError",
    "WukongConfig",
    "WukongError",
    "__version__",
    "close_default_client",
    "get",
    "hookimpl",
    "load_config",
]
