"""The payload of one invocation: which job, which store, which task to start with, on which page."""

from __future__ import annotations

import pickle
from typing import NamedTuple


class Invocation(NamedTuple):
    """One executor's start: run ``task`` of ``job`` (its plan is on ``page``), using store ``store``.

    ``store`` is the store's spec (see :func:`wukong.core.backends.storage_spec`), so a worker that
    serves many clients, like a Lambda function, knows where the job lives.
    """

    job: str
    store: bytes
    task: int
    page: int

    def encode(self) -> bytes:
        """The payload bytes."""
        return pickle.dumps(tuple(self), protocol=5)

    @classmethod
    def decode(cls, payload: bytes) -> Invocation:
        """Read a payload made by :meth:`encode`."""
        return cls(*pickle.loads(payload))
