"""Compute backends: where executors run."""

from wukong.backends.compute.base import (
    ComputeBackend,
    ComputeCapabilities,
    ExecutorContext,
    InvocationHandler,
)

__all__ = ["ComputeBackend", "ComputeCapabilities", "ExecutorContext", "InvocationHandler"]
