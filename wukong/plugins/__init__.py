"""wukong's plugin system: hook specifications, the plugin manager and the backend registry.

Backends (built-in and third-party alike) are found through the hooks in :mod:`wukong.plugins.hookspecs`.
Third-party plugins are modules named by an entry point in the ``wukong`` group.
"""

from wukong.plugins.hookspecs import hookimpl, hookspec
from wukong.plugins.manager import get_plugin_manager, reset_plugin_manager
from wukong.plugins.registry import BackendEntry, BackendRegistry, backend_registry

__all__ = [
    "BackendEntry",
    "BackendRegistry",
    "backend_registry",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "reset_plugin_manager",
]
