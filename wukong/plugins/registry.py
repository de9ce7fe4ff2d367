"""The registry of backends by name, with imports deferred until a backend is used.

A :class:`BackendEntry` names its class by a dotted path (``"package.module:Class"``), so registering
the built-in Redis backend does not import ``redis``; the import happens in :meth:`BackendRegistry.load`.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Literal

from wukong.errors import ConfigError

BackendKind = Literal["compute", "storage"]


@dataclass(frozen=True)
class BackendEntry:
    """A backend as a plugin registers it.

    Attributes:
        name: the name users put in config (``compute="local"``, ``storage="redis"``).
        target: ``"module:Class"`` of the backend class, imported only when the backend is used;
            a class object is accepted too.
        description: one line for ``wukong plugins``.
        url_schemes: URL schemes that select this backend (``storage="redis://host:6379/0"``).
        install_hint: what to install when the import fails (``pip install wukong[s3]``).

    """

    name: str
    target: str | type
    description: str = ""
    url_schemes: tuple[str, ...] = ()
    install_hint: str = ""


@dataclass(frozen=True)
class RegisteredBackend:
    """A :class:`BackendEntry` with the plugin that registered it."""

    entry: BackendEntry
    plugin: str
    distribution: str | None = None


@dataclass
class BackendRegistry:
    """The backends of one kind known in this process, by name."""

    kind: BackendKind
    backends: dict[str, RegisteredBackend] = field(default_factory=dict)

    def add(self, entry: BackendEntry, plugin: str, distribution: str | None = None) -> None:
        """Register ``entry``; a name registered twice is a :class:`ConfigError`."""
        if entry.name in self.backends:
            other = self.backends[entry.name].plugin
            raise ConfigError(
                f"{self.kind} backend {entry.name!r} is registered by both {other!r} and {plugin!r}; "
                f"block one of them with WUKONG_DISABLE_PLUGINS"
            )
        self.backends[entry.name] = RegisteredBackend(entry, plugin, distribution)

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self.backends)

    def name_for_url(self, url: str) -> str:
        """Return the name of the backend that serves ``url``'s scheme."""
        scheme = url.split("://", 1)[0].lower()
        for name, registered in self.backends.items():
            if scheme in registered.entry.url_schemes:
                return name
        schemes = sorted(s for r in self.backends.values() for s in r.entry.url_schemes)
        raise ConfigError(
            f"no {self.kind} backend serves URLs of scheme {scheme!r} ({url!r}); "
            f"known schemes: {', '.join(schemes) or 'none'}"
        )

    def get(self, name: str) -> RegisteredBackend:
        """Return the registration of ``name``, or raise a :class:`ConfigError` listing the known ones."""
        try:
            return self.backends[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} backend {name!r}; known {self.kind} backends: "
                f"{', '.join(self.names()) or 'none'} (see `wukong plugins`)"
            ) from None

    def load(self, name: str) -> type:
        """Import and return the class of backend ``name``."""
        entry = self.get(name).entry
        if not isinstance(entry.target, str):
            return entry.target
        module_name, _, attribute = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            hint = f"; {entry.install_hint}" if entry.install_hint else ""
            raise ConfigError(f"{self.kind} backend {name!r} cannot be imported ({error}){hint}") from error
        return getattr(module, attribute)


_lock = threading.Lock()
_registries: dict[BackendKind, BackendRegistry] = {}


def _build_registry(kind: BackendKind) -> BackendRegistry:
    from wukong.plugins.manager import get_plugin_manager

    manager = get_plugin_manager()
    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    hook = getattr(manager.hook, f"wukong_register_{kind}_backends")
    registry = BackendRegistry(kind)
    # Calling each implementation on its own tells which plugin registered which backend.
    for implementation in reversed(hook.get_hookimpls()):
        dist = distributions.get(id(implementation.plugin))
        dist_name = f"{dist.project_name} {dist.version}" if dist is not None else None
        for entry in implementation.function() or ():
            registry.add(entry, implementation.plugin_name, dist_name)
    return registry


def backend_registry(kind: BackendKind) -> BackendRegistry:
    """Return this process's registry of ``kind`` backends, building it on first use."""
    with _lock:
        if kind not in _registries:
            _registries[kind] = _build_registry(kind)
        return _registries[kind]


def clear_registries() -> None:
    """Forget the registries (they are rebuilt from the plugin manager on next use)."""
    with _lock:
        _registries.clear()
