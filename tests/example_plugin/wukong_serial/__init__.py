"""An example wukong plugin: the ``serial`` compute backend.

It runs every invocation, one at a time and in arrival order, on one thread of the client's
process. It is what a third-party backend looks like: a class with ``name``, ``Options`` and
``capabilities``, registered through the ``wukong_register_compute_backends`` hook and found by the
``wukong`` entry point in this package's pyproject.toml.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

import wukong
from wukong.backends.compute import BasicContext, ComputeBackend, ComputeCapabilities, InvocationHandler
from wukong.backends.options import BackendOptions
from wukong.plugins import BackendEntry


class SerialOptions(BackendOptions):
    """Options of the ``serial`` backend."""

    thread_name: str = "wukong-serial"


class _Context(BasicContext):
    def __init__(self, invocations: queue.SimpleQueue):
        self._invocations = invocations

    def invoke(self, payloads: Sequence[bytes]) -> None:
        for payload in payloads:
            self._invocations.put(payload)

    def remaining_seconds(self) -> float | None:
        return None


class SerialCompute(ComputeBackend):
    """One executor at a time, on one thread."""

    name = "serial"
    Options = SerialOptions
    capabilities = ComputeCapabilities(runs_in_client_process=True)

    def __init__(self, **options):
        super().__init__(**options)
        self.invocations_run = 0
        self._invocations: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self, handler: InvocationHandler) -> None:
        def serve() -> None:
            context = _Context(self._invocations)
            while (payload := self._invocations.get()) is not None:
                handler(payload, context)
                self.invocations_run += 1

        self._thread = threading.Thread(target=serve, name=self.options.thread_name, daemon=True)
        self._thread.start()

    def invoke(self, payloads: Sequence[bytes]) -> None:
        for payload in payloads:
            self._invocations.put(payload)

    def close(self) -> None:
        if self._thread is not None:
            self._invocations.put(None)
            self._thread.join()
            self._thread = None


@wukong.hookimpl
def wukong_register_compute_backends():
    return [BackendEntry(name="serial", target=SerialCompute, description="one executor at a time")]
