"""What a backend class must implement for what it declares, checked as the backend is created.

A plugin's store that declares ``atomic_counters`` but leaves ``pop_all`` to the base class would
otherwise fail in the middle of a job, on the first record an executor appends. Checking when the
client creates the backend turns that into a :class:`~wukong.errors.ConfigError` at start, naming
the plugin, the backend and every missing method.
"""

from __future__ import annotations

from typing import Any

from wukong.backends.storage.base import StorageBackend

# For each storage capability, the methods the base class leaves raising or doing nothing.
STORAGE_NEEDS: dict[str, tuple[str, ...]] = {
    "atomic_counters": ("set_bit_and_count", "count_bits", "increment", "append", "pop_all"),
    "conditional_increments": ("increment_once",),
    "fenced_writes": ("scoped",),
    "expiring_keys": ("scoped",),
}


def abstract_methods(backend_class: type) -> list[str]:
    """The methods ``backend_class`` must implement and does not (its abstract ones), sorted."""
    return sorted(getattr(backend_class, "__abstractmethods__", ()))


def unimplemented_capabilities(store: StorageBackend) -> dict[str, list[str]]:
    """For each capability ``store`` declares, the methods it needs and inherits from the base class."""
    missing: dict[str, list[str]] = {}
    for capability, methods in STORAGE_NEEDS.items():
        if getattr(store.capabilities, capability):
            inherited = [name for name in methods if _inherited(type(store), name)]
            if inherited:
                missing[capability] = inherited
    return missing


def _inherited(backend_class: type, name: str) -> bool:
    method: Any = getattr(backend_class, name)
    return getattr(method, "__func__", method) is getattr(StorageBackend, name)
