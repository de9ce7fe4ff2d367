"""Creating backends by name (or, for stores, by URL) through the plugin registry."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from wukong.backends.compute.base import ComputeBackend
from wukong.backends.storage.base import ObjectStorageBackend
from wukong.errors import ConfigError
from wukong.plugins.contract import abstract_methods, unimplemented_capabilities
from wukong.plugins.registry import BackendKind, BackendRegistry, backend_registry


def _instantiate(kind: BackendKind, name: str, options: dict[str, Any]) -> Any:
    registry = backend_registry(kind)
    backend_class = registry.load(name)
    abstract = abstract_methods(backend_class)
    if abstract:
        raise _broken(registry, name, f"does not implement {', '.join(abstract)}")
    try:
        backend = backend_class(**options)
    except ValidationError as error:
        raise ConfigError(f"invalid options for {kind} backend {name!r}:\n{error}") from None
    if isinstance(backend, ObjectStorageBackend):
        missing = unimplemented_capabilities(backend)
        if missing:
            said = "; ".join(f"{cap} without {', '.join(methods)}" for cap, methods in missing.items())
            raise _broken(registry, name, f"declares {said}")
    return backend


def _broken(registry: BackendRegistry, name: str, what: str) -> ConfigError:
    registered = registry.get(name)
    origin = registered.distribution or registered.plugin
    return ConfigError(
        f"{registry.kind} backend {name!r} from plugin {registered.plugin!r} ({origin}) {what}: "
        "implement them, or declare less (see docs/plugins.md)"
    )


def create_storage(name: str, options: dict[str, Any]) -> ObjectStorageBackend:
    """Create the store ``name`` (or the one serving URL ``name``) with ``options``."""
    if "://" in name:
        options = {"url": name, **options}
        name = backend_registry("storage").name_for_url(name)
    return _instantiate("storage", name, options)


def create_compute(name: str, options: dict[str, Any]) -> ComputeBackend:
    """Create the compute backend ``name`` with ``options``."""
    return _instantiate("compute", name, options)
