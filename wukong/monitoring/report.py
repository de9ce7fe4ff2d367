"""What a client tells about a job once it has ended, in memory and as JSON."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wukong.backends.compute.base import Usage
from wukong.monitoring.summary import JobMetrics

FORMAT = "wukong-job/1"
"""The ``format`` field of a saved report; bumped when a field changes meaning."""


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
        metrics: the executors' counters, one record per task and their summary (filled when the
            job's keys are removed, so after a failure once ``client.settle()`` returns).
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
    metrics: JobMetrics = field(default_factory=JobMetrics)
    usage: Usage | None = None

    @property
    def total_seconds(self) -> float:
        """Wall time of the whole job."""
        return sum(self.seconds.values())

    def to_dict(self) -> dict[str, Any]:
        """Everything in plain JSON types (task records as objects with named fields)."""
        fields = {name: value for name, value in vars(self).items() if name not in ("metrics", "usage")}
        return {
            "format": FORMAT,
            **copy.deepcopy(fields),
            "metrics": self.metrics.to_dict(),
            "usage": None if self.usage is None else asdict(self.usage),
        }

    def _repr_html_(self) -> str:
        """The HTML report (summary and task stream), shown by Jupyter when a report is a cell's value."""
        from wukong.report.html import render_fragment

        return render_fragment(self)

    def save(self, path: str | Path) -> None:
        """Write the report as JSON, for ``wukong report`` or any other tool."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobReport:
        """The report :meth:`to_dict` made."""
        data = dict(data)
        if data.pop("format", None) != FORMAT:
            raise ValueError(f"not a wukong job report (expected format {FORMAT!r})")
        metrics = JobMetrics.from_dict(data.pop("metrics"))
        usage = data.pop("usage")
        return cls(**data, metrics=metrics, usage=None if usage is None else Usage(**usage))

    @classmethod
    def load(cls, path: str | Path) -> JobReport:
        """Read a report :meth:`save` wrote."""
        return cls.from_dict(json.loads(Path(path).read_text()))
