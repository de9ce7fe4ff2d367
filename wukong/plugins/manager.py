"""Building the plugin manager: built-ins first, then entry points, minus the blocked names."""

from __future__ import annotations

import os
import threading

import pluggy

from wukong.plugins import hookspecs

ENTRY_POINT_GROUP = "wukong"
BLOCK_ENV = "WUKONG_DISABLE_PLUGINS"
BUILTIN_PLUGIN_NAME = "wukong.builtin"

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def build_plugin_manager() -> pluggy.PluginManager:
    """Build a new plugin manager with the built-in plugin and every installed entry-point plugin.

    Plugin names listed (comma-separated) in ``WUKONG_DISABLE_PLUGINS`` are blocked: for an entry
    point that is the entry point's name, for the built-ins ``wukong.builtin``.
    """
    from wukong.plugins import builtin

    manager = pluggy.PluginManager("wukong")
    manager.add_hookspecs(hookspecs)
    for name in os.environ.get(BLOCK_ENV, "").split(","):
        if name.strip():
            manager.set_blocked(name.strip())
    if not manager.is_blocked(BUILTIN_PLUGIN_NAME):
        manager.register(builtin, name=BUILTIN_PLUGIN_NAME)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    manager.check_pending()
    return manager


def get_plugin_manager() -> pluggy.PluginManager:
    """Return this process's plugin manager, building it on first use."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = build_plugin_manager()
        return _manager


def reset_plugin_manager() -> None:
    """Forget the plugin manager and the backend registries, so the next use rebuilds them.

    For tests and for programs that install a plugin at run time.
    """
    global _manager
    from wukong.plugins import registry

    with _lock:
        _manager = None
    registry.clear_registries()
