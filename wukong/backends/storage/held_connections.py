"""Connections to one Redis server, taken from redis-py's pool once and kept for the hot commands.

An executor's every task ends in one round trip to the store (write, count, maybe read). Through
redis-py's client each such trip also takes a connection from the pool and gives it back, which
checks the process id twice, takes the pool's lock and records metrics: about 30 µs a trip here, a
tenth of a small task's whole cost. :class:`HeldConnections` keeps its own connections instead,
each used by one thread at a time, and sends a batch of commands as one write. Like the pool, it
looks whether the server has closed an idle connection before sending on it, and retries a broken
one as the connection's own retry policy says.

A process that forks leaves its held connections to the parent: the child's copies forget them
and open their own, as redis-py's pool does.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = Sequence[Any]


class HeldConnections:
    """Connections made by ``pool`` and kept here, one per thread using them at a time."""

    def __init__(self, pool: redis.ConnectionPool):
        self._pool = pool
        self._idle: list[Any] = []  # list.pop and list.append are atomic: no lock needed
        _ALL.add(self)

    def run(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` in one write, then read a reply for each, in order.

        A command the server refuses has its :class:`~redis.exceptions.ResponseError` in its
        place, as a pipeline's ``execute(raise_on_error=False)`` gives it. A connection that breaks
        during the exchange is closed, and the batch sent again only as often as the connection's
        retry policy says (redis-py's default: never, since a batch may have been applied).
        """
        connection = self._take()
        try:
            replies = connection.retry.call_with_retry(
                lambda: _exchange(connection, commands), lambda _error: connection.disconnect()
            )
        except BaseException:
            # A reply may be half read: the connection starts afresh on its next use.
            connection.disconnect()
            raise
        finally:
            self._idle.append(connection)
        return replies

    def _take(self) -> Any:
        """An idle connection fit to send on (or a new one, which connects on its first send)."""
        try:
            connection = self._idle.pop()
        except IndexError:
            return self._pool.make_connection()
        # Whatever is readable before we send is no reply of ours: the server closed the
        # connection (a restart, a timeout, CLIENT KILL) or left stray bytes. Start afresh rather
        # than resend a batch that may have been applied.
        try:
            stale = connection.can_read()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            stale = True
        if stale:
            connection.disconnect()
        return connection

    def close(self) -> None:
        """Close every connection held here (a later :meth:`run` opens new ones)."""
        while self._idle:
            self._idle.pop().disconnect()


_ALL: weakref.WeakSet[HeldConnections] = weakref.WeakSet()


def _forget_in_child() -> None:
    # The sockets are the parent's: closing them here would shut them for it too.
    for held in list(_ALL):
        held._idle = []


os.register_at_fork(after_in_child=_forget_in_child)


def _exchange(connection: Any, commands: Sequence[Command]) -> list[Any]:
    connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies
