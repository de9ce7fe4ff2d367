"""What a job's executors moved and saved: counted by each executor, summed in the metadata store.

Each executor counts in memory and adds its figures to the job's counters in the same batch that
counts it out, so metrics cost no extra round trip; the client reads the sums once no executor is
live, just before it removes the job's keys.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from wukong.backends.storage.base import StorageBackend
from wukong.core.keys import JobKeys


@dataclass
class Metrics:
    """A job's (or one executor's) storage traffic and what locality saved.

    Attributes:
        data_bytes_written: task outputs written to the data store (serialized bytes; for a store
            that keeps objects, what they would serialize to).
        data_bytes_read: task outputs read from the data store, measured the same way.
        metadata_bytes_read: schedule pages read from the metadata store.
        objects_kept_local: outputs the plan would have stored that clustering or delayed I/O
            kept in an executor's memory instead.
        reads_avoided: inputs found in an executor's memory instead of read from storage.
        delayed_io_timeouts: waits for a big output's dependent that ran out of time (the output
            was then written).
        tasks_run: tasks computed (the client's progress bar follows it as executors end).
        executors: executors that ran.

    """

    data_bytes_written: int = 0
    data_bytes_read: int = 0
    metadata_bytes_read: int = 0
    objects_kept_local: int = 0
    reads_avoided: int = 0
    delayed_io_timeouts: int = 0
    tasks_run: int = 0
    executors: int = 0

    def increments(self, job: JobKeys) -> dict[str, int]:
        """What to add to the job's counters: the non-zero figures."""
        return {job.metric(name): value for name, value in vars(self).items() if value}

    @classmethod
    def read(cls, metadata: StorageBackend, job: JobKeys) -> Metrics:
        """The job's sums, from its counters."""
        return cls(**{field.name: metadata.increment(job.metric(field.name), 0) for field in fields(cls)})
