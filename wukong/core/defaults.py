"""Which client Dask uses when a compute names none: the clients set as default, newest first.

A client made with ``set_as_default=True`` (the default, as with ``distributed.Client``) becomes
Dask's scheduler (``dask.config`` ``scheduler``) until it closes; then the client set before it
(still open) takes over, or the settings from before the first one come back. A scheduler the user
set meanwhile stays. Where its executors share no filesystem, the client also sets
``dataframe.shuffle.method`` to ``tasks``, so Dask builds shuffles that work there from the start
(see ``docs/compatibility.md``).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import dask

if TYPE_CHECKING:
    from wukong.core.client import Client

SCHEDULER_NAME = "wukong"
_SHUFFLE_SETTING = "dataframe.shuffle.method"
_UNSET = object()

_lock = threading.Lock()
_clients: list[Client] = []  # set as default and still open, oldest first
_before: dict[str, Any] = {}  # the settings the first of them replaced


def set_default(client: Client) -> None:
    """Make ``client`` the scheduler of computes that name none, until :func:`unset_default`."""
    with _lock:
        if not _clients:
            _before.update({name: dask.config.get(name, _UNSET) for name in ("scheduler", _SHUFFLE_SETTING)})
        _clients.append(client)
        _apply(client)


def unset_default(client: Client) -> None:
    """``client`` closes: the one set before it takes over, or the earlier settings come back.

    Only while Dask's scheduler is still ``client``: a scheduler the user set since is theirs.
    """
    with _lock:
        if client not in _clients:
            return
        ours = dask.config.get("scheduler", None) is client
        _clients.remove(client)
        if ours and _clients:
            _apply(_clients[-1])
        elif not _clients:
            if not ours:  # the scheduler is the user's now; the shuffle setting was ours
                _before.pop("scheduler", None)
            _restore(dask.config.set)


def _restore(assign: Any) -> None:
    for name, value in _before.items():
        if value is _UNSET:
            _forget(name)
        else:
            assign({name: value})
    _before.clear()


def _assign_directly(settings: dict[str, Any]) -> None:
    """Write settings into Dask's configuration without its lock (a forked child's only thread)."""
    for name, value in settings.items():
        section, leaf = _section(name, create=True)
        section[leaf] = value


def _section(name: str, create: bool) -> tuple[dict[str, Any], str]:
    """The dict of Dask's configuration that holds dotted setting ``name``, and its last part.

    Without ``create``, a missing section gives an empty dict (nothing there to change).
    """
    *parents, leaf = name.split(".")
    section: Any = dask.config.config
    for part in parents:
        section = section.setdefault(part, {}) if create else section.get(part)
        if not isinstance(section, dict):
            return {}, leaf
    return section, leaf


def _forget_clients_after_fork() -> None:
    """A forked child (a pool worker, a task's own processes) holds copies of the clients, not them.

    A compute inside a task there must not run on a copy of the parent's client; it gets the
    settings from before, as in a process that never had one.
    """
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _clients:
        _clients.clear()
        _restore(_assign_directly)  # Dask's own lock, too, may have been held at the fork


os.register_at_fork(after_in_child=_forget_clients_after_fork)


class DefaultScheduler:
    """Dask's scheduler protocol on the default client: ``wukong.get``, and the name ``"wukong"``.

    The default client is the newest open client set as default, else the process's own (made on
    first use). Dask's ``persist`` finds :meth:`persist` here, so ``x.persist(scheduler="wukong")``
    keeps the outputs in the store, as ``x.persist(scheduler=client)`` does.
    """

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        """Compute ``keys`` of ``dsk`` on the default client (see :meth:`Client.get`)."""
        return _client().get(dsk, keys, **kwargs)

    def persist(self, collections: Any, optimize_graph: bool = True, **kwargs: Any) -> Any:
        """Persist ``collections`` on the default client (see :meth:`Client.persist`)."""
        return _client().persist(collections, optimize_graph=optimize_graph, **kwargs)

    def __repr__(self) -> str:
        return "wukong.get"


get = DefaultScheduler()


def _client() -> Client:
    from wukong.core.client import default_client

    return current() or default_client()


def register_scheduler_name() -> None:
    """Let Dask find this scheduler by name: ``scheduler="wukong"``, also in ``dask.config.set``."""
    import dask.base

    dask.base.named_schedulers.setdefault(SCHEDULER_NAME, get)


def current() -> Client | None:
    """The newest open client set as default, if any."""
    with _lock:
        return _clients[-1] if _clients else None


def _apply(client: Client) -> None:
    shuffle = _before.get(_SHUFFLE_SETTING, _UNSET)
    if not client.compute_backend.capabilities.shares_filesystem:
        shuffle = "tasks"
    dask.config.set(scheduler=client)
    if shuffle is _UNSET:
        _forget(_SHUFFLE_SETTING)
    else:
        dask.config.set({_SHUFFLE_SETTING: shuffle})


def _forget(name: str) -> None:
    """Remove setting ``name`` (dotted) from Dask's configuration, as if never set."""
    section, leaf = _section(name, create=False)
    section.pop(leaf, None)
