"""The compute interface: start executors, invoke them with a payload, stop them.

A compute backend runs invocations: opaque byte payloads handed to an :data:`InvocationHandler`
(wukong's executor) in some worker: a process of the local pool, a thread, an AWS Lambda function.
Invocations are fire-and-forget; results travel through storage, never through the backend.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from wukong.backends.options import BackendOptions
from wukong.backends.storage.base import ObjectStorageBackend
from wukong.errors import ConfigError


@dataclass(frozen=True)
class Delivery:
    """What the platform tells an executor about this run of its invocation.

    Attributes:
        event_id: the platform's id of the event, where deliveries repeat (``repeats_deliveries``):
            the same for the platform's retries of one event, another for a duplicate event.
        retry: this run repeats one whose worker died (``retries_crashes``), where the platform can
            tell; where deliveries repeat, the executor assumes any run may be a retry.
        backup: this run is a speculative backup of one still running (``speculates``).

    """

    event_id: str | None = None
    retry: bool = False
    backup: bool = False


class ExecutorContext(Protocol):
    """What a worker gives the executor it runs: every method the core calls on it.

    What else the executor must know of the platform (payload limit, repeated deliveries, billing)
    travels in each invocation, from the backend's :class:`ComputeCapabilities`.
    :class:`BasicContext` gives the last three methods' plain answers.
    """

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Start one new executor per payload, without waiting for them."""

    def remaining_seconds(self) -> float | None:
        """Seconds left before the platform stops this executor, or ``None`` for no limit."""

    def delivery(self) -> Delivery:
        """How this run of the invocation came to be (see :class:`Delivery`)."""

    def storage(self, store: ObjectStorageBackend) -> ObjectStorageBackend:
        """The store as executors reach it from this worker: ``store``, or a view that models the platform.

        The simulated Lambda limits each executor's bandwidth this way
        (:class:`~wukong.backends.compute.bandwidth.LimitedBandwidth`).
        """

    def park(self, resume: Callable[[], float | None]) -> bool:
        """Take a waiting executor's continuation; whether the worker took it.

        The executor has nothing to run but waits (delayed I/O). A worker that takes ``resume``
        runs other invocations and calls it when due: ``resume()`` answers the seconds until its
        next call, or ``None`` once the executor has ended (see
        :class:`~wukong.backends.compute.parking.ParkingLot`). A worker that cannot returns
        ``False``, and the executor waits in place.
        """


class BasicContext:
    """The plain answers of an :class:`ExecutorContext`: a first delivery, the stores as they are, no parking.

    A backend's context subclasses it and adds ``invoke`` and ``remaining_seconds``, overriding
    what its capabilities ask for.
    """

    def delivery(self) -> Delivery:
        """A first delivery of a one-off event."""
        return Delivery()

    def storage(self, store: ObjectStorageBackend) -> ObjectStorageBackend:
        """The store itself."""
        return store

    def park(self, resume: Callable[[], float | None]) -> bool:
        """Decline: the executor waits in place."""
        return False


InvocationHandler = Callable[[bytes, ExecutorContext], None]
"""The function a worker calls with each payload: :func:`wukong.core.executor.handle_invocation`."""


@dataclass(frozen=True)
class ComputeCapabilities:
    """What a compute backend can do; the core checks these, never ``hasattr``.

    Attributes:
        runs_in_client_process: executors run in the client's own process (threads), so they can
            use a store that is not shared across processes.
        max_payload_bytes: the largest invocation payload, or ``None`` for no limit; larger
            payloads are kept in the metadata store and passed by key.
        repeats_deliveries: an invocation may be delivered more than once (Lambda's asynchronous
            invokes are at-least-once), so each delivery claims its invocation first, by its
            context's ``delivery().event_id``, and a duplicate event ends without running anything.
        bills_duration: the platform bills executors by run time, so each adds its own to the
            job's usage, which :meth:`ComputeBackend.usage` prices.
        lost_after_seconds: the longest an invocation can run, the platform's own retries
            included. A job whose executors show no sign of life for longer has lost one (the
            platform gave up on it), and fails instead of waiting forever. ``None`` when the
            backend tells of lost work itself, through :meth:`ComputeBackend.check`.
        retries_crashes: when a worker dies running an invocation, the backend delivers it again:
            with the same event id where deliveries repeat (as Lambda retries a failed event),
            else saying so through the context's ``delivery().retry``. Executors then leave marks that
            let a retry replay its crashed attempt exactly (the successors it counted in, whether
            it ended). A retry invokes again what its attempt invoked: the backend must drop
            such repeated payloads, or deliver each with the same event id (claims drop them).
        speculates: the backend may start a backup attempt of an invocation that runs long,
            beside it, saying so through the context's ``delivery()`` (``backup``, ``retry``); it
            stops the attempt that loses, and retries it. Executors then count through guarded
            increments, which the metadata store must offer (``conditional_increments``).

    """

    runs_in_client_process: bool = False
    max_payload_bytes: int | None = None
    repeats_deliveries: bool = False
    bills_duration: bool = False
    lost_after_seconds: float | None = None
    retries_crashes: bool = False
    speculates: bool = False
    shares_filesystem: bool = True
    hash_seed: str | None = None

    @property
    def delivery(self) -> DeliveryModel:
        """The one delivery model these declarations add up to (see :class:`DeliveryModel`)."""
        if self.speculates:
            if self.repeats_deliveries or not self.retries_crashes:
                raise ConfigError(
                    "a compute backend that speculates must declare retries_crashes, and not "
                    f"repeats_deliveries: {self}"
                )
            return DeliveryModel.SPECULATIVE
        if self.repeats_deliveries:
            return DeliveryModel.AT_LEAST_ONCE
        return DeliveryModel.RETRYING if self.retries_crashes else DeliveryModel.PLAIN


class DeliveryModel(enum.Enum):
    """How a job's invocations are delivered, which decides how executors count themselves in and out.

    * ``PLAIN``: each invocation runs once.
    * ``RETRYING``: a run whose worker died is delivered again, saying so (``Delivery.retry``).
    * ``AT_LEAST_ONCE``: any event may be delivered again, a platform's retries included (Lambda):
      each delivery claims its invocation by event id, and any run may be a retry.
    * ``SPECULATIVE``: retrying, and a backup may run beside a straggler: the two race.

    See :mod:`wukong.core.attempts` for what each asks of executors.
    """

    PLAIN = "plain"
    RETRYING = "retrying"
    AT_LEAST_ONCE = "at-least-once"
    SPECULATIVE = "speculative"

    @property
    def claims(self) -> bool:
        """Deliveries claim their invocation by event id (duplicates end at once)."""
        return self is DeliveryModel.AT_LEAST_ONCE

    @property
    def retries(self) -> bool:
        """A run may repeat one that crashed, and replays it from the marks it left."""
        return self is not DeliveryModel.PLAIN

    @property
    def races(self) -> bool:
        """Two runs of an invocation may be alive at once, and count through guarded increments."""
        return self is DeliveryModel.SPECULATIVE


@dataclass(frozen=True)
class Usage:
    """What a job's executors used, on a backend that bills by duration.

    Attributes:
        invocations: executors that ran (repeated deliveries that ended at once not included).
        billed_seconds: their run time, each rounded up to the billing granularity.
        gb_seconds: ``billed_seconds`` times the memory given to each executor, in GB.
        cost_usd: estimated price of the requests and the GB-seconds, in US dollars.

    """

    invocations: int
    billed_seconds: float
    gb_seconds: float
    cost_usd: float


class ComputeBackend(ABC):
    """Runs executors. Subclasses declare :attr:`name`, :attr:`Options` and :attr:`capabilities`."""

    name: ClassVar[str]
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    capabilities: ComputeCapabilities = ComputeCapabilities()

    def __init__(self, **options: Any):
        self.options = self.Options(**options)

    def describe(self) -> str:
        """Return a short description for messages and reports."""
        return f"{self.name} compute"

    @abstractmethod
    def start(self, handler: InvocationHandler) -> None:
        """Get ready to run invocations with ``handler`` (start workers, open clients)."""

    @abstractmethod
    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Start one executor per payload and return without waiting for them."""

    def check(self) -> None:
        """Raise :class:`~wukong.errors.ComputeError` if invocations can no longer run.

        The client calls this while it waits for a job, so a dead worker fails the job instead of
        hanging it.
        """

    def usage(self, invocations: int, billed_milliseconds: int) -> Usage | None:
        """Price what a job's executors reported; ``None`` unless ``capabilities.bills_duration``."""
        return None

    def close(self) -> None:
        """Stop the workers and release resources."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
