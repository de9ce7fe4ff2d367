"""wukong: a fast serverless DAG engine for Dask graphs.

Example::

    import dask.array as da, wukong
    (da.ones((100, 100), chunks=50) + 1).sum().compute(scheduler=wukong.get)   # 20000.0
"""

from wukong.config import WukongConfig, load_config
from wukong.core.client import Client, close_default_client, get
from wukong.core.report import JobReport
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

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ComputeError",
    "ConfigError",
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
