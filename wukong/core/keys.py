"""Where a job's things live in storage: every key starts with the job's own prefix.

Tasks are named by their index in the job's plan, not by their Dask key, so storage keys are short
and never need escaping. Two jobs never share a key, whatever their task keys.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "wukong/"


@dataclass(frozen=True, slots=True)
class JobKeys:
    """The storage keys of one job."""

    job: str

    @property
    def prefix(self) -> str:
        """Every key of the job starts with this."""
        return f"{ROOT}{self.job}/"

    def output(self, task: int) -> str:
        """The stored output of task ``task``."""
        return f"{ROOT}{self.job}/o/{task}"

    def counter(self, task: int) -> str:
        """The dependency counter of task ``task`` (one bit per dependency)."""
        return f"{ROOT}{self.job}/c/{task}"

    def page(self, page: int) -> str:
        """A page of schedules."""
        return f"{ROOT}{self.job}/p/{page}"

    def invocation(self, task: int) -> str:
        """The payload of the invocation that starts at ``task``, when it is too big to send."""
        return f"{ROOT}{self.job}/i/{task}"

    def holders(self, task: int) -> str:
        """How many executors hold a big input of task ``task``; the first waits for the others."""
        return f"{ROOT}{self.job}/h/{task}"

    def metric(self, name: str) -> str:
        """One of the job's metric sums (see :class:`wukong.core.metrics.Metrics`)."""
        return f"{ROOT}{self.job}/m/{name}"

    def claim(self, task: int) -> str:
        """The events that delivered the invocation that starts at ``task``, one bit each.

        Only used on compute backends that may deliver an invocation twice.
        """
        return f"{ROOT}{self.job}/d/{task}"

    def ended(self, task: int) -> str:
        """Set when the executor invoked for ``task`` has counted itself out (a retry then ends).

        Only used on compute backends that retry crashed invocations, like the ``fanned_out`` marks.
        """
        return f"{ROOT}{self.job}/e/{task}"

    def won(self, task: int) -> str:
        """Set by the first attempt of task ``task``'s invocation to end, with speculation."""
        return f"{ROOT}{self.job}/w/{task}"

    def backup_in(self, task: int) -> str:
        """Set when the speculative backup of task ``task``'s invocation has counted itself in."""
        return f"{ROOT}{self.job}/bi/{task}"

    def backup_out(self, task: int) -> str:
        """Set when the speculative backup of task ``task``'s invocation has counted itself out."""
        return f"{ROOT}{self.job}/bo/{task}"

    def fanned_out(self, task: int) -> str:
        """Set when the executors that task ``task``'s hand-off invokes have been counted in."""
        return f"{ROOT}{self.job}/f/{task}"

    @property
    def records(self) -> str:
        """The list executors append result and error records to; the client waits on it."""
        return f"{ROOT}{self.job}/records"

    @property
    def task_records(self) -> str:
        """The list executors append their task records to as they end."""
        return f"{ROOT}{self.job}/tasks"

    @property
    def live_executors(self) -> str:
        """How many executors of the job are invoked and not yet ended."""
        return f"{ROOT}{self.job}/live"

    @property
    def billed_milliseconds(self) -> str:
        """The executors' total run time, on compute backends that bill by duration."""
        return f"{ROOT}{self.job}/billed-ms"

    @property
    def invocations(self) -> str:
        """How many executors ran, on compute backends that bill by duration."""
        return f"{ROOT}{self.job}/invocations"

    @property
    def submitted(self) -> str:
        """Set when the job is submitted; its absence while the job runs means the store lost it."""
        return f"{ROOT}{self.job}/submitted"

    @property
    def failed(self) -> str:
        """Set when the job failed, so executors still running stop early."""
        return f"{ROOT}{self.job}/failed"
