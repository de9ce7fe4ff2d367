"""Storage backends: where intermediate objects, counters and job records live."""

from wukong.backends.storage.base import (
    BatchedWrites,
    CoordinationStore,
    ObjectStorageBackend,
    ObjectStore,
    StorageBackend,
    StorageCapabilities,
)

__all__ = [
    "BatchedWrites",
    "CoordinationStore",
    "ObjectStorageBackend",
    "ObjectStore",
    "StorageBackend",
    "StorageCapabilities",
]
