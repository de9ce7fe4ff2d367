"""What a backend class must implement for what it declares, checked as the backend is created.

A plugin's store that declares ``atomic_counters`` but leaves ``pop_all`` to the base class would
otherwise fail in the middle of a job, on the first record an executor appends; one that declares
``batched_writes`` without ``append_and_increment`` would fail as its first executor ends. Checking
when the client creates the backend turns that into a :class:`~wukong.errors.ConfigError` at start,
naming the plugin, the backend and every missing method.
"""

from __future__ import annotations

from typing import Any

from wukong.backends.storage.base import ObjectStorageBackend, StorageBackend

# For each storage capability, the methods a store that declares it must define itself: the
# coordination methods (which the base class leaves raising, or an object store lacks), the fast
# paths (no base class has them), and a view of its own.
STORAGE_NEEDS: dict[str, tuple[str, ...]] = {
    "atomic_counters": ("set_bit_and_count", "count_bits", "increment", "append", "pop_all"),
    "conditional_increments": ("increment_once",),
    "batched_writes": ("put_and_count", "put_count_and_read", "append_and_increment"),
    "fenced_writes": ("scoped",),
    "expiring_keys": ("scoped",),
}

_BASES = (ObjectStorageBackend, StorageBackend)


def abstract_methods(backend_class: type) -> list[str]:
    """The methods ``backend_class`` must implement and does not (its abstract ones), sorted."""
    return sorted(getattr(backend_class, "__abstractmethods__", ()))


def unimplemented_capabilities(store: ObjectStorageBackend) -> dict[str, list[str]]:
    """For each capability ``store`` declares, the methods it needs and lacks, or inherits from a base."""
    missing: dict[str, list[str]] = {}
    for capability, methods in STORAGE_NEEDS.items():
        if getattr(store.capabilities, capability):
            lacking = [name for name in methods if not _implemented(type(store), name)]
            if lacking:
                missing[capability] = lacking
    return missing


def _implemented(backend_class: type, name: str) -> bool:
    """Whether ``backend_class`` has ``name`` from somewhere other than the base classes."""
    method: Any = getattr(backend_class, name, None)
    if method is None:
        return False
    function = getattr(method, "__func__", method)
    return all(function is not getattr(base, name, None) for base in _BASES)
