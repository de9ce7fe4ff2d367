"""Opening backends by name, from config in the client and from a spec in an executor.

Each process keeps the stores it has opened, by spec, so an executor opens a store once per worker,
and executor threads in the client's process use the client's own store object (which is how the
ideal store, a dictionary, is shared with them).
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

from pydantic import ValidationError

from wukong.backends.compute.base import ComputeBackend
from wukong.backends.storage.base import StorageBackend
from wukong.errors import ConfigError
from wukong.plugins.registry import BackendKind, backend_registry

_lock = threading.Lock()
_open_stores: dict[bytes, StorageBackend] = {}


def _instantiate(kind: BackendKind, name: str, options: dict[str, Any]) -> Any:
    backend_class = backend_registry(kind).load(name)
    try:
        return backend_class(**options)
    except ValidationError as error:
        raise ConfigError(f"invalid options for {kind} backend {name!r}:\n{error}") from None


def create_storage(name: str, options: dict[str, Any]) -> StorageBackend:
    """Create the store ``name`` (or the one serving URL ``name``) with ``options``."""
    if "://" in name:
        options = {"url": name, **options}
        name = backend_registry("storage").name_for_url(name)
    return _instantiate("storage", name, options)


def create_compute(name: str, options: dict[str, Any]) -> ComputeBackend:
    """Create the compute backend ``name`` with ``options``."""
    return _instantiate("compute", name, options)


def storage_spec(store: StorageBackend) -> bytes:
    """The bytes an invocation carries so an executor can open ``store``."""
    return pickle.dumps(store.spec(), protocol=5)


def share_store(store: StorageBackend) -> bytes:
    """Let executors in this process use ``store`` itself; return its spec."""
    spec = storage_spec(store)
    with _lock:
        _open_stores[spec] = store
    return spec


def unshare_store(store: StorageBackend) -> None:
    """Stop handing ``store`` to executors in this process."""
    with _lock:
        for spec, shared in list(_open_stores.items()):
            if shared is store:
                del _open_stores[spec]


def open_store(spec: bytes) -> StorageBackend:
    """Return this process's store for ``spec``, opening it on first use."""
    store = _open_stores.get(spec)
    if store is not None:
        return store
    with _lock:
        store = _open_stores.get(spec)
        if store is None:
            name, options = pickle.loads(spec)
            store = _open_stores[spec] = create_storage(name, options)
        return store
