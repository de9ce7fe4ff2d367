"""What a client tells about a job once it has ended."""

from __future__ import annotations

from dataclasses import dataclass, field

from wukong.backends.compute.base import Usage
from wukong.core.metrics import Metrics


@dataclass
class JobReport:
    """Facts and timings of one job (``client.last_job``).

    Attributes:
        job: the job's id (also its storage prefix).
        tasks: tasks after culling.
        leaves: executors the client invoked.
        pages: schedule pages stored.
        compute: the compute backend's description.
        storage: the store's description.
        seconds: wall time of each phase: ``graph`` (normalise and check), ``partition``, ``submit``
            (store pages, invoke leaves), ``run`` (until the last result or the first error),
            ``collect`` (read results), ``cleanup`` (remove the job's keys).
        error: the error's type and message, when the job failed.
        metrics: bytes written and read, objects kept local, reads avoided (filled when the job's
            keys are removed).
        usage: invocations, billed time and estimated cost, on a compute backend that bills by
            duration (AWS Lambda); ``None`` elsewhere.

    """

    job: str
    tasks: int
    leaves: int
    pages: int
    compute: str
    storage: str
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    usage: Usage | None = None

    @property
    def total_seconds(self) -> float:
        """Wall time of the whole job."""
        return sum(self.seconds.values())
