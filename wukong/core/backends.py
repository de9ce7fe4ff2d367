"""Creating backends by name (or, for stores, by URL) through the plugin registry."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from wukong.backends.compute.base import ComputeBackend
from wukong.backends.storage.base import StorageBackend
from wukong.errors import ConfigError
from wukong.plugins.registry import BackendKind, backend_registry


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
