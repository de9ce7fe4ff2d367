"""Compute backends: where executors run."""

from wukong.backends.compute.base import (
    BasicContext,
    ComputeBackend,
    ComputeCapabilities,
    Delivery,
    DeliveryModel,
    ExecutorContext,
    InvocationHandler,
)

__all__ = [
    "BasicContext",
    "ComputeBackend",
    "ComputeCapabilities",
    "Delivery",
    "DeliveryModel",
    "ExecutorContext",
    "InvocationHandler",
]
