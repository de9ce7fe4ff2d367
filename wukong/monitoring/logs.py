"""Executors' log lines, kept so that a failed task's record can carry them to the client.

Every log record emitted in a thread while an executor runs there (wukong's own and the task's,
through any logger that lets it reach the root) goes to that executor's bounded buffer. A worker
process that only runs executors lets ``INFO`` records through (:func:`configure_worker`); a client
that runs executors in its own threads keeps its logging as its user set it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(processName)s]: %(message)s"


class _Buffers(threading.local):
    """The buffers of the executors running (or suspended) in this thread, innermost last."""

    def __init__(self) -> None:
        self.stack: list[deque[str]] = []


_buffers = _Buffers()
_install_lock = threading.Lock()
_installed = False


class _Capture(logging.Handler):
    """Copies each record to the buffer of the executor running in the emitting thread."""

    def emit(self, record: logging.LogRecord) -> None:
        stack = _buffers.stack
        if stack:
            try:
                stack[-1].append(self.format(record))
            except Exception:
                self.handleError(record)
        # Being a handler on the root, this one hides logging's last resort (warnings printed on
        # standard error when nothing else is configured): stand in for it.
        if self._alone(record.name) and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)

    def _alone(self, name: str) -> bool:
        """Whether no other handler sees records of logger ``name``."""
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            if any(handler is not self for handler in logger.handlers):
                return False
            if not logger.propagate:
                break
            logger = logger.parent
        return True


def _install() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            handler = _Capture()
            handler.setFormatter(logging.Formatter(FORMAT))
            logging.getLogger().addHandler(handler)
            _installed = True


@contextmanager
def captured(lines: int, buffer: deque[str] | None = None) -> Iterator[deque[str]]:
    """Collect the last ``lines`` log lines of this thread while the block runs (none for 0).

    They go to ``buffer`` when given (a parked executor that resumes goes on with its own).
    """
    if buffer is None:
        buffer = deque(maxlen=max(lines, 0))
    if lines <= 0:
        yield buffer
        return
    _install()
    _buffers.stack.append(buffer)
    try:
        yield buffer
    finally:
        _buffers.stack.pop()


def configure_worker(level: int = logging.INFO) -> None:
    """Let records of ``level`` and above reach executors' buffers in a process that only runs them.

    Warnings still print on standard error, as they would without any configuration.
    """
    root = logging.getLogger()
    if not any(not isinstance(handler, _Capture) for handler in root.handlers):
        stderr = logging.StreamHandler()
        stderr.setLevel(logging.WARNING)
        root.addHandler(stderr)
    if root.level > level:
        root.setLevel(level)
