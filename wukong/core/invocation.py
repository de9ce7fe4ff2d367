"""The payload of one invocation: which job, which stores, which task to start with, on which page.

A payload is small (the job id, the stores' spec, two integers), but a compute backend may accept
less than that, like an AWS Lambda function with a low payload limit, or stores whose spec is long.
Such a payload is kept in the job's metadata store and the invocation carries a reference to it: the
metadata store's own spec and the key. The stored payload is a job key, removed with the job.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import NamedTuple

from wukong.backends.compute.base import DeliveryModel
from wukong.core.keys import JobKeys
from wukong.core.stores import Stores, open_stores
from wukong.errors import ComputeError

_PROTOCOL = 5
_INLINE, _STORED = 0, 1


class ExecutorOptions(NamedTuple):
    """What every executor of a job must know, set by the client and passed on to successors.

    The platform's part comes from the compute backend's capabilities (see
    :class:`~wukong.backends.compute.base.ComputeCapabilities`: payload limit, deliveries, billing,
    retries, speculation, hash seed); the rest from the configuration's
    :class:`~wukong.config.LocalitySettings`, :class:`~wukong.config.MonitoringSettings`,
    ``scheduling`` (``executor``: the ``module:Class`` of an experiment's executor, ``None`` for
    wukong's own) and ``key_ttl``.
    """

    max_payload_bytes: int | None = None
    delivery: DeliveryModel = DeliveryModel.PLAIN
    bills_duration: bool = False
    clustering: bool = False
    big_object_bytes: int = 0
    delayed_io_seconds: float = 0.0
    cache_bytes: int = 0
    task_records: bool = False
    log_lines: int = 0
    executor: str | None = None
    key_ttl_seconds: int | None = None
    hash_seed: str | None = None


class Invocation(NamedTuple):
    """One executor's start: run ``task`` of ``job`` (its plan is on ``page``), using ``stores``.

    ``stores`` is the stores' spec (see :meth:`wukong.core.stores.Stores.spec`), so a worker that
    serves many clients, like a Lambda function, knows where the job lives.
    """

    job: str
    stores: bytes
    task: int
    page: int
    options: ExecutorOptions = ExecutorOptions()

    def successor(self, task: int, page: int) -> Invocation:
        """The invocation of ``task`` by this one's executor: same job, stores and platform."""
        return self._replace(task=task, page=page)

    def encode(self) -> bytes:
        """The payload bytes, with the invocation inline."""
        return pickle.dumps((_INLINE, *self), protocol=_PROTOCOL)


def metadata_spec(stores: Stores) -> bytes:
    """The spec of the metadata store alone: what a reference to a stored payload carries."""
    return pickle.dumps((stores.metadata.spec(), None), protocol=_PROTOCOL)


def encode_payloads(invocations: Sequence[Invocation], stores: Stores) -> list[bytes]:
    """Encode ``invocations``; one over its ``max_payload_bytes`` is stored and sent by reference."""
    payloads = [invocation.encode() for invocation in invocations]
    limit = invocations[0].options.max_payload_bytes if invocations else None
    if limit is None or all(len(payload) <= limit for payload in payloads):
        return payloads
    stored = {}
    metadata = metadata_spec(stores)
    for number, (invocation, payload) in enumerate(zip(invocations, payloads, strict=True)):
        if len(payload) <= limit:
            continue
        key = JobKeys(invocation.job).invocation(invocation.task)
        reference = pickle.dumps((_STORED, metadata, key), protocol=_PROTOCOL)
        if len(reference) > limit:
            raise ComputeError(
                f"an invocation of job {invocation.job} needs {len(reference):,} bytes even when "
                f"its payload is kept in storage, more than the compute backend's limit of "
                f"{limit:,} bytes; raise the limit or use a store with a shorter spec"
            )
        stored[key] = payload
        payloads[number] = reference
    stores.metadata.put_many(stored)
    return payloads


def decode_payload(payload: bytes) -> Invocation | None:
    """Read a payload made by :func:`encode_payloads`; ``None`` if it was stored and its job ended."""
    kind, *fields = pickle.loads(payload)
    if kind == _STORED:
        metadata, key = fields
        stored = open_stores(metadata).metadata.get(key)
        if stored is None:
            return None
        kind, *fields = pickle.loads(stored)
    job, stores, task, page, options = fields
    return Invocation(job, stores, task, page, ExecutorOptions(*options))
