"""Where a job's things live in storage, and the life of each kind of key: one table.

Every key of a job starts with the job's own prefix, ``wukong/<job>/``. Tasks are named by their
index in the job's plan, not by their Dask key, so storage keys are short and never need escaping,
and two jobs never share a key. :data:`KINDS` declares every kind of key a job may write, once:
its path, its store, who writes it, who reads it, and when it goes. The client's clean-up
(:func:`job_keys`) and the table in ``docs/architecture.md`` (:func:`lifecycle_table`, checked by a
test) both derive from it, so a new kind of key cannot be forgotten by either.

The life of every key, whatever its kind:

1. **The alive mark opens the job.** The client writes ``alive`` (with the schedule pages) before
   it invokes anyone, and refreshes it while it waits (its value holds the submission time and the
   last heartbeat, which ``wukong gc`` reads).
2. **Executors write only while the mark is there.** Their stores are scoped to the job
   (:class:`~wukong.backends.storage.base.WriteScope`): a write made after the mark is gone is
   refused, or undone by its writer, and raises :class:`~wukong.errors.JobEndedError`.
3. **The client removes the mark first, then the rest.** Once the mark is gone no executor can add
   a key, so the keys :func:`job_keys` lists are all there is to remove, even when executors
   outlive their job (a timeout, a dead worker, a slow Lambda).
4. **Every key expires** after ``key_ttl`` seconds on stores that can expire keys: the backstop for
   a client that died before step 3 (``wukong gc`` removes such jobs at once).

Example, for job ``3f2a`` with task 7 feeding task 9 beside two other inputs::

    wukong/3f2a/alive      the alive mark ("<submitted> <heartbeat>", seconds since the epoch)
    wukong/3f2a/p/0        schedule page 0
    wukong/3f2a/o/7        task 7's output, stored because task 9 runs elsewhere
    wukong/3f2a/c/9        task 9's dependency counter: one bit per input
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

ROOT = "wukong/"


@dataclass(frozen=True)
class JobShape:
    """What decides which keys a job may have written: its plan's shape and its options.

    Attributes:
        tasks: how many tasks the plan has.
        pages: how many schedule pages.
        fan_ins: the tasks with more than one input (they have a counter).
        fan_outs: the tasks with more than one dependent (a retry marks their hand-off).
        stored_outputs: the tasks whose output may be stored.
        metric_names: the names of the job's metric sums.
        delayed_io: executors may wait for a big input's dependent (holders counters).
        stored_payloads: an invocation may be too big to send, and is stored.
        bills_duration: the compute backend bills by duration (usage counters).
        retries: the compute backend retries crashed invocations, or backs them up.
        speculates: the compute backend starts speculative backups.
        repeats_deliveries: the compute backend may deliver an invocation twice (claims).

    """

    tasks: int
    pages: int
    fan_ins: tuple[int, ...] = ()
    fan_outs: tuple[int, ...] = ()
    stored_outputs: tuple[int, ...] = ()
    metric_names: tuple[str, ...] = ()
    delayed_io: bool = False
    stored_payloads: bool = False
    bills_duration: bool = False
    retries: bool = False
    speculates: bool = False
    repeats_deliveries: bool = False


Instances = Callable[[JobShape], Iterable[int | str | None]]


def _once(shape: JobShape) -> list[None]:
    return [None]


def _every_task(shape: JobShape) -> range:
    return range(shape.tasks)


def _when(flag: str, instances: Instances = _every_task) -> Instances:
    """The instances of ``instances``, only for jobs whose shape has ``flag`` set."""

    def chosen(shape: JobShape) -> Iterable[int | str | None]:
        return instances(shape) if getattr(shape, flag) else ()

    return chosen


@dataclass(frozen=True)
class KeyKind:
    """One kind of key a job writes.

    Attributes:
        name: the kind's name (and the :class:`JobKeys` member that makes its keys).
        path: the key after the job's prefix; ``<task>``, ``<page>`` or ``<metric>`` for one key
            per task, page or metric.
        store: ``metadata`` or ``data`` (the store that holds it when a job has two).
        written_by: who writes it, and when.
        read_by: who reads it, and why.
        instances: which instances a job of a given shape may have (``[None]``: one key).

    """

    name: str
    path: str
    store: Literal["metadata", "data"]
    written_by: str
    read_by: str
    instances: Instances = _once

    @functools.cached_property
    def segment(self) -> str:
        """The path up to its parameter (``o/`` for ``o/<task>``), or the whole path."""
        return self.path.split("<")[0]


ALIVE = KeyKind(
    "alive",
    "alive",
    "metadata",
    "the client, before it invokes anyone; refreshed while it waits",
    "every executor write (refused once it is gone); `wukong gc` (age, heartbeat)",
)
KINDS: tuple[KeyKind, ...] = (
    ALIVE,
    KeyKind(
        "page",
        "p/<page>",
        "metadata",
        "the client, at submission",
        "executors, to plan their tasks",
        lambda shape: range(shape.pages),
    ),
    KeyKind(
        "output",
        "o/<task>",
        "data",
        "the executor of a task another executor (or the client) reads",
        "executors of its dependents; the client, for a result; a persist's outputs: later jobs",
        lambda shape: shape.stored_outputs,
    ),
    KeyKind(
        "counter",
        "c/<task>",
        "metadata",
        "executors of the task's inputs, one bit each",
        "the executor that completes it runs the task",
        lambda shape: shape.fan_ins,
    ),
    KeyKind(
        "holders",
        "h/<task>",
        "metadata",
        "executors holding a big input of the task",
        "the first holder waits for the other inputs (delayed I/O)",
        _when("delayed_io", lambda s: s.fan_ins),
    ),
    KeyKind(
        "invocation",
        "i/<task>",
        "metadata",
        "the invoker of an invocation too big to send",
        "the invoked executor",
        _when("stored_payloads"),
    ),
    KeyKind(
        "records",
        "records",
        "metadata",
        "executors, for a result, an error or a shared directory",
        "the client, as it waits",
    ),
    KeyKind(
        "task_records",
        "tasks",
        "metadata",
        "each executor as it ends (its task records)",
        "the client, for the job's report",
    ),
    KeyKind(
        "live_executors",
        "live",
        "metadata",
        "invokers count executors in before invoking; each executor counts itself out",
        "the client: at zero, nothing of the job is running",
    ),
    KeyKind(
        "metric",
        "m/<metric>",
        "metadata",
        "each executor as it ends",
        "the client, for the job's report",
        lambda shape: shape.metric_names,
    ),
    KeyKind(
        "failed",
        "failed",
        "metadata",
        "the executor of a failed task, or the client",
        "executors, which stop",
    ),
    KeyKind(
        "billed_milliseconds",
        "billed-ms",
        "metadata",
        "each executor as it ends (duration billing)",
        "the client, for the job's usage",
        _when("bills_duration", _once),
    ),
    KeyKind(
        "invocations",
        "invocations",
        "metadata",
        "each executor as it ends (duration billing)",
        "the client, for the job's usage",
        _when("bills_duration", _once),
    ),
    KeyKind(
        "claim",
        "d/<task>",
        "metadata",
        "each delivery of an invocation, one bit per event",
        "that delivery: the first event owns the invocation",
        _when("repeats_deliveries"),
    ),
    KeyKind(
        "ended",
        "e/<task>",
        "metadata",
        "an executor counting itself out (retries, backups)",
        "a retry, which ends at once if set",
        _when("retries"),
    ),
    KeyKind(
        "fanned_out",
        "f/<task>",
        "metadata",
        "a hand-off that counted its invoked executors in",
        "a retry, which counts in only what is not marked",
        _when("retries", lambda s: s.fan_outs),
    ),
    KeyKind(
        "won",
        "w/<task>",
        "metadata",
        "the first attempt of an invocation to end",
        "later attempts, which only let go",
        _when("speculates"),
    ),
    KeyKind(
        "held",
        "held",
        "metadata",
        "the client, as a persist ends (before `alive` goes); refreshed while its futures live",
        "`wukong gc` (age, heartbeat); the client removes it with the last held output",
        lambda shape: (),  # never part of a clean-up: futures own it (wukong.core.futures)
    ),
    KeyKind(
        "backup_in",
        "bi/<task>",
        "metadata",
        "a speculative backup counting itself in",
        "its retry",
        _when("speculates"),
    ),
    KeyKind(
        "backup_out",
        "bo/<task>",
        "metadata",
        "a speculative backup counting itself out",
        "its retry",
        _when("speculates"),
    ),
)
KIND = {kind.name: kind for kind in KINDS}


@dataclass(frozen=True, slots=True)
class JobKeys:
    """The storage keys of one job, one member per kind of :data:`KINDS`."""

    job: str

    @property
    def prefix(self) -> str:
        """Every key of the job starts with this."""
        return f"{ROOT}{self.job}/"

    def key(self, kind: KeyKind, instance: int | str | None = None) -> str:
        """The key of ``instance`` (a task, page or metric; ``None`` for a one-key kind) of ``kind``."""
        if instance is None:
            return f"{ROOT}{self.job}/{kind.path}"
        return f"{ROOT}{self.job}/{kind.segment}{instance}"

    @property
    def alive(self) -> str:
        """The job's alive mark: executors write only while it is there (see the module docstring)."""
        return f"{ROOT}{self.job}/alive"

    @property
    def held(self) -> str:
        """A persisted job's mark once it has ended, while futures hold its outputs (for ``wukong gc``)."""
        return f"{ROOT}{self.job}/held"

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
        """One of the job's metric sums (see :class:`wukong.monitoring.metrics.Metrics`)."""
        return f"{ROOT}{self.job}/m/{name}"

    def claim(self, task: int) -> str:
        """The events that delivered the invocation that starts at ``task``, one bit each."""
        return f"{ROOT}{self.job}/d/{task}"

    def ended(self, task: int) -> str:
        """Set when the executor invoked for ``task`` has counted itself out (a retry then ends)."""
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
        """The list executors append result, error and scratch records to; the client waits on it."""
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
    def failed(self) -> str:
        """Set when the job failed, so executors still running stop early."""
        return f"{ROOT}{self.job}/failed"


def job_keys(keys: JobKeys, shape: JobShape) -> Iterator[tuple[KeyKind, str]]:
    """Every key a job of ``shape`` may have written, with its kind, the alive mark first."""
    for kind in KINDS:
        for instance in kind.instances(shape):
            yield kind, keys.key(kind, instance)


def job_keys_in(store: str, keys: JobKeys, shape: JobShape) -> Iterator[str]:
    """The keys of :func:`job_keys` that live in ``store`` (``metadata`` or ``data``), one at a time."""
    for kind in KINDS:
        if kind.store == store:
            for instance in kind.instances(shape):
                yield keys.key(kind, instance)


def job_of(key: str) -> str | None:
    """The job a stored key belongs to, or ``None`` for a key that is not wukong's."""
    if not key.startswith(ROOT):
        return None
    job, slash, _ = key[len(ROOT) :].partition("/")
    return job if slash and job else None


def lifecycle_table() -> str:
    """The Markdown table of :data:`KINDS` that ``docs/architecture.md`` shows."""
    rows = ["| key (after `wukong/<job>/`) | store | written by | read by |", "|---|---|---|---|"]
    rows += [f"| `{k.path}` | {k.store} | {k.written_by} | {k.read_by} |" for k in KINDS]
    rows.append(
        "\nEvery key goes at the job's clean-up: the client removes `alive` first (from then on no "
        "executor write takes effect), then every other key above; each expires after `key_ttl` "
        "where the store can expire keys. A persist first writes `held`, then ends as any job but "
        "keeps `held` and the requested outputs, which go with their last future (see "
        "`wukong.core.futures`)."
    )
    return "\n".join(rows)
