"""Storage backends: where intermediate objects, counters and job records live."""

from wukong.backends.storage.base import StorageBackend, StorageCapabilities

__all__ = ["StorageBackend", "StorageCapabilities"]
