"""One job on the client: store the schedules, invoke the leaves, wait for records, clean up.

The client is not a scheduler: once the leaves are invoked, executors schedule each other. The client
only waits on the job's record list (a blocking pop where the store has one), fails at the first
error record, checks the compute backend's health while it waits, reads the requested outputs in one
batch, and finally removes every key the job could have written, after the last executor has ended
(or, when it gives up waiting, before: removing the job's alive mark first keeps any executor still
running from writing again; see :mod:`wukong.core.keys`). Every key it writes expires after
``key_ttl``; it refreshes the alive mark's heartbeat while it waits, for ``wukong gc``.

While it waits, it reads how many tasks have run for the progress bar, and takes the task records
stored so far (every second), so the store never holds a big job's records to its end. At the end it
reads the executors' metrics and the last records into the job's report.

On a platform that can lose an invocation without telling (AWS Lambda gives up on an event after its
retries), the client also watches the job's live count and records: silence for longer than an
invocation can last fails the job with :class:`~wukong.errors.ComputeError` instead of a hang.
"""

from __future__ import annotations

import importlib
import logging
import math
import shutil
import time
import uuid
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import fields
from types import ModuleType
from typing import Any

from wukong.backends.compute.base import ComputeBackend
from wukong.config import LocalitySettings, MonitoringSettings
from wukong.core import codec, records
from wukong.core.graph import TaskGraph, cycle_collection_paused
from wukong.core.invocation import ExecutorOptions, Invocation, encode_payloads
from wukong.core.keys import JobKeys, JobShape, job_keys_in
from wukong.core.partition import Plan
from wukong.core.stores import Stores
from wukong.errors import (
    ComputeError,
    GraphError,
    JobLostError,
    JobTimeoutError,
    SerializationError,
    StorageError,
)
from wukong.monitoring import timeline
from wukong.monitoring.dask_callbacks import DaskCallbacks
from wukong.monitoring.metrics import Metrics
from wukong.monitoring.progress import Progress
from wukong.monitoring.report import JobReport
from wukong.monitoring.summary import JobMetrics

logger = logging.getLogger("wukong.job")

_POLL_SECONDS = 0.5
_RECORDS_SECONDS = 1.0  # how often a running job's task records are taken from the store
_INVOKED_AT_ONCE = 4096  # leaves whose payloads the client encodes and sends together
HEARTBEAT_SECONDS = 5.0  # how often a waiting client refreshes its job's alive mark


def _strawman() -> ModuleType:
    """The centralized strawman: an experiment, imported only by the jobs that run it."""
    return importlib.import_module("wukong.experiments.strawman")


def alive_value(submitted: float, heartbeat: float) -> bytes:
    """The alive mark's value: when the job was submitted and when its client last showed life."""
    return f"{submitted:.3f} {heartbeat:.3f}".encode()


def read_alive(value: bytes) -> tuple[float, float]:
    """``(submitted, heartbeat)`` from an alive mark's value."""
    submitted, heartbeat = value.split()
    return float(submitted), float(heartbeat)


class Job:
    """A partitioned graph run once on a compute backend and a store."""

    def __init__(
        self,
        graph: TaskGraph,
        plan: Plan,
        compute: ComputeBackend,
        stores: Stores,
        stores_spec: bytes,
        *,
        timeout: float | None,
        cleanup_timeout: float,
        key_ttl: int | None,
        locality: LocalitySettings,
        monitoring: MonitoringSettings,
        centralized: bool = False,
        callbacks: DaskCallbacks | None = None,
    ):
        self.graph, self.plan = graph, plan
        self.compute, self.stores, self.stores_spec = compute, stores, stores_spec
        self.timeout, self.cleanup_timeout, self.key_ttl = timeout, cleanup_timeout, key_ttl
        self.view = stores.scoped(None, key_ttl)  # the client's own writes expire too
        # Often enough that the alive mark, which expires too, outlives every other key.
        self._heartbeat_seconds = min(HEARTBEAT_SECONDS, (key_ttl or HEARTBEAT_SECONDS) / 4)
        self.submitted = 0.0  # when submit() stored the pages (seconds since the epoch)
        self._keys_expire = math.inf  # when the first keys expire (perf_counter)
        self.locality, self.monitoring = locality, monitoring
        self.callbacks = callbacks
        self._task_blobs: list[bytes] = []  # task records read while the job ran (for callbacks)
        self.central = _strawman().CentralScheduler(plan) if centralized else None
        self.scratch: list[str] = []  # directories its tasks made for each other, removed at the end
        self.keys = JobKeys(uuid.uuid4().hex[:16])
        self.report = JobReport(
            job=self.keys.job,
            tasks=len(graph),
            leaves=len(plan.leaves),
            pages=len(plan.pages),
            compute=compute.describe(),
            storage=stores.describe(),
        )

    def submit(self) -> None:
        """Store the schedule pages and invoke the leaves' executors, each once its pages are stored.

        The first leaf starts as soon as the pages it needs are stored (:meth:`Plan.pages_needed`);
        the client then encodes and stores the next pages a batch of leaves at a time, while the
        executors already invoked run.
        """
        started = time.perf_counter()
        keys, plan = self.keys, self.plan
        leaves = plan.leaves
        self.submitted = time.time()
        if self.key_ttl is not None:
            self._keys_expire = time.perf_counter() + self.key_ttl
        writes = {keys.alive: alive_value(self.submitted, self.submitted)}
        stored = invoked = 0  # pages stored, leaves invoked
        while invoked < len(leaves):
            # The first leaf alone (the job starts soonest), then the next batch of leaves.
            wanted = invoked if invoked == 0 else min(invoked + _INVOKED_AT_ONCE, len(leaves)) - 1
            needed = plan.pages_needed(wanted)
            # Always more pages than are stored: the wanted leaf is not ready yet (none is, at first).
            with cycle_collection_paused():
                writes.update({keys.page(page): self._encode_page(page) for page in range(stored, needed)})
            self.view.metadata.put_many(writes)
            writes, stored = {}, needed
            # Every leaf whose pages are all stored now (the pages a leaf needs never fall as it grows).
            ready = bisect_right(range(len(leaves)), stored, lo=invoked, key=plan.pages_needed)
            self._invoke(leaves[invoked:ready])
            invoked = ready
        self.report.seconds["submit"] = time.perf_counter() - started

    def _invoke(self, tasks: list[int]) -> None:
        """Count executors in for ``tasks``, then invoke them, a batch at a time.

        Batches keep the client's payloads few at any moment (a million-task job has half a
        million leaves), and the first executors start while later payloads are encoded.
        """
        first, page_of = self._invocation(0, 0), self.plan.page_of
        for start in range(0, len(tasks), _INVOKED_AT_ONCE):
            batch = tasks[start : start + _INVOKED_AT_ONCE]
            payloads = encode_payloads([first.successor(task, page_of[task]) for task in batch], self.view)
            self.view.metadata.increment(self.keys.live_executors, len(batch))
            self.compute.invoke(payloads)

    def _invocation(self, task: int, page: int) -> Invocation:
        capabilities, locality = self.compute.capabilities, self.locality
        options = ExecutorOptions(
            max_payload_bytes=capabilities.max_payload_bytes,
            delivery=capabilities.delivery,
            bills_duration=capabilities.bills_duration,
            clustering=locality.clustering,
            big_object_bytes=locality.big_object_bytes,
            delayed_io_seconds=locality.delayed_io_seconds if locality.delayed_io else 0.0,
            cache_bytes=locality.cache_bytes if locality.locality_cache else 0,
            task_records=self.monitoring.task_records or self.callbacks is not None,
            log_lines=self.monitoring.log_lines,
            executor=None if self.central is None else _strawman().EXECUTOR,
            key_ttl_seconds=self.key_ttl,
            hash_seed=capabilities.hash_seed,
        )
        return Invocation(self.keys.job, self.stores_spec, task, page, options)

    @property
    def _may_store_payloads(self) -> bool:
        """Whether an invocation of this job may be too big to send (the largest task number is)."""
        limit = self.compute.capabilities.max_payload_bytes
        last = len(self.plan)
        return limit is not None and len(self._invocation(last, last).encode()) > limit

    def _encode_page(self, page: int) -> bytes:
        columns = self.plan.page_columns(page)
        try:
            blob = codec.dumps_page(columns)
        except Exception:
            for task, node in zip(columns[0], columns[2], strict=True):  # find the task to blame
                try:
                    codec.dumps_code(node)
                except Exception as error:
                    raise SerializationError(self.graph.keys[task], error) from error
            raise
        limit = self.stores.metadata.capabilities.max_object_bytes
        if limit is not None and len(blob) > limit:
            raise GraphError(self._page_too_big(page, len(blob), limit), [])
        return blob

    def _page_too_big(self, page: int, size: int, limit: int) -> str:
        """Say which task makes a schedule page bigger than the store takes, and what to do."""
        tasks = self.plan.pages[page]
        sizes = {task: len(codec.dumps_code(self.graph.nodes[task])) for task in tasks}
        biggest = max(sizes, key=sizes.__getitem__)
        return (
            f"schedule page {page} ({len(tasks)} tasks) is {size:,} bytes, more than "
            f"{self.stores.metadata.describe()} accepts ({limit:,} bytes); its largest task, "
            f"{self.graph.keys[biggest]!r}, takes {sizes[biggest]:,} bytes with its arguments. "
            "Pass large values to tasks as Dask collections or persisted futures rather than "
            "inside the graph, or lower page_tasks"
        )

    def wait(self, collect: bool = True) -> list[Any]:
        """Wait for every requested output and return them in the order of ``graph.results``.

        ``collect=False`` leaves them in the store (a persist) and returns an empty list.
        """
        started = time.perf_counter()
        deadline = None if self.timeout is None else started + self.timeout
        pending = set(self.graph.results)
        # With Dask's callbacks active (its ProgressBar, say), Dask's side shows the job: one bar.
        show = False if self.callbacks is not None else self.monitoring.progress
        with Progress(len(self.graph), show, f"job {self.keys.job}") as progress:
            for batch in self._batches(deadline, progress, pending):
                ready = []
                for record in batch:
                    if isinstance(record, records.ErrorRecord):
                        self.report.seconds["run"] = time.perf_counter() - started
                        raise record.to_exception(self.keys.job)
                    if isinstance(record, records.ScratchRecord):
                        self.scratch.append(record.path)
                        continue
                    if isinstance(record, records.DoneRecord):
                        assert self.central is not None
                        ready += self.central.done(record.task)
                    pending.discard(record.task)
                if not pending:
                    break
                if ready:
                    self._invoke(ready)
        self.report.seconds["run"] = time.perf_counter() - started
        if not collect:
            return []

        started = time.perf_counter()
        keys = self.keys
        stored = self.stores.data.get_many([keys.output(task) for task in self.graph.results])
        if any(blob is None for blob in stored):
            raise StorageError(f"a result of job {keys.job} vanished from {self.stores.data.describe()}")
        if not self.stores.objects_stored_as_is:
            stored = [codec.loads(blob) for blob in stored]
        self.report.seconds["collect"] = time.perf_counter() - started
        return stored

    def _batches(
        self, deadline: float | None, progress: Progress, pending: set[int]
    ) -> Iterator[list[records.Record]]:
        silence = _Silence(self)
        tasks_run = self.keys.metric("tasks_run")
        beaten = records_read = time.monotonic()
        while True:
            wait = _POLL_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - time.perf_counter())
                if wait <= 0:
                    raise JobTimeoutError(
                        f"job {self.keys.job} did not finish within its timeout of "
                        f"{self.timeout} s ({len(self.graph)} tasks on {self.compute.describe()})"
                    )
            wait = min(wait, self._keys_expire - time.perf_counter())
            if wait <= 0:
                # Its first keys (the pages, the first counters) expire now: it cannot finish.
                raise JobTimeoutError(
                    f"job {self.keys.job} ran for as long as its keys live (key_ttl = "
                    f"{self.key_ttl} s), so its keys begin to expire; raise key_ttl above the "
                    "job's run time"
                )
            batch = self.view.metadata.pop_all(self.keys.records, timeout=wait)
            if not batch:
                self.compute.check()
                self._check_not_lost()
                batch = self._last_records_if_none_live(pending)
            if time.monotonic() - beaten > self._heartbeat_seconds:
                beaten = time.monotonic()
                self._check_not_lost()  # a heartbeat must never bring back a mark the store lost
                self.view.metadata.put(self.keys.alive, alive_value(self.submitted, time.time()))
            silence.observe(bool(batch))
            if progress.due():
                progress.update(self.stores.metadata.increment(tasks_run, 0))
            if self.callbacks is not None:
                self._read_task_records()
            elif self.monitoring.task_records and time.monotonic() - records_read > _RECORDS_SECONDS:
                # Taken as they come, so the store does not hold a big job's records to its end.
                records_read = time.monotonic()
                self._read_task_records()
            if batch:
                yield [records.decode(data) for data in batch]

    def _last_records_if_none_live(self, pending: set[int]) -> list[bytes]:
        """Records that came as the last executor ended; raise if none came and none can come.

        With no executor live, nothing can report the outputs still missing, and waiting on would
        hang. An executor appends its records before it counts out, so one more look finds any
        that landed since the last.
        """
        if time.perf_counter() >= self._keys_expire:
            return []  # the counter may have expired, so a 0 says nothing (the next poll fails the job)
        metadata = self.view.metadata
        if metadata.increment(self.keys.live_executors, 0) > 0:
            return []
        if late := metadata.pop_all(self.keys.records, timeout=0):
            return late
        raise ComputeError(
            f"job {self.keys.job}: every executor has ended, yet {len(pending)} requested "
            f"output(s) never came, {self.graph.keys[min(pending)]!r} among them: an executor "
            "stopped without reporting its task (a bug in wukong or in the compute backend "
            f"{self.compute.describe()}: its workers' log tells more)"
        )

    def _check_not_lost(self) -> None:
        metadata = self.stores.metadata
        if metadata.get(self.keys.alive) is None:
            raise JobLostError(
                f"{metadata.describe()} lost the keys of job {self.keys.job} while it ran (the "
                "server restarted empty, evicted them, or someone removed them, as `wukong gc` "
                "would): its counters and records are gone"
            )

    def cleanup(
        self, failed: bool, compute_broken: bool = False, lost: bool = False, hold: bool = False
    ) -> None:
        """Remove every key the job could have written, once no executor of it is alive.

        After a failure the job is marked failed first, so executors still queued end at once.
        When the compute backend is broken, executors that died will never count themselves out,
        so the client does not wait for them. Either way the job's alive mark goes first: an
        executor still running can then write nothing more, and the rest of the keys are exactly
        those :func:`~wukong.core.keys.job_keys` lists. When the store lost the job, the client
        sweeps its prefix until no executor has written there for a while.

        ``hold=True`` (a persist that succeeded) writes the held mark and keeps it and the
        requested outputs, which :mod:`wukong.core.futures` then owns.
        """
        started = time.perf_counter()
        try:
            if failed:
                self.view.metadata.put(self.keys.failed, b"1")
            if lost:
                self.sweep()
                return
            if not compute_broken:
                self._wait_for_executors()
            self._read_usage()
            self._read_metrics()
            if failed:  # its scratch records may not have been read yet
                self._read_scratch_records()
            self.end(hold=hold and not failed)
            self._remove_scratch()
        finally:
            self.report.seconds["cleanup"] = time.perf_counter() - started

    def _read_scratch_records(self) -> None:
        for data in self.stores.metadata.pop_all(self.keys.records, timeout=0):
            record = records.decode(data)
            if isinstance(record, records.ScratchRecord):
                self.scratch.append(record.path)

    def _remove_scratch(self) -> None:
        """Remove the directories tasks made for each other (disk shuffles): no executor runs now."""
        for path in self.scratch:
            shutil.rmtree(path, ignore_errors=True)
        self.scratch.clear()

    def end(self, hold: bool = False) -> None:
        """Remove the alive mark (no executor write lands after it), then every other key.

        ``hold=True`` (a persist) first writes the job's ``held`` mark, which ``wukong gc`` reads
        as it reads ``alive``, and keeps it and the requested outputs for their futures.
        """
        kept: set[str] = set()
        if hold:
            kept = {self.keys.held, *self.held_outputs()}
            self.view.metadata.put(self.keys.held, alive_value(self.submitted, time.time()))
        self.stores.metadata.delete_many([self.keys.alive])
        shape = self.shape()
        # Named one batch at a time as they go: a big job may have millions of them.
        metadata, data = (
            (key for key in job_keys_in(store, self.keys, shape) if key not in kept)
            for store in ("metadata", "data")
        )
        self.stores.delete(metadata, data)

    def held_outputs(self) -> list[str]:
        """The store keys of the requested outputs, in the order of ``graph.results``."""
        return [self.keys.output(task) for task in self.graph.results]

    def shape(self) -> JobShape:
        """What decides which keys this job may have written (see :data:`wukong.core.keys.KINDS`)."""
        plan, capabilities = self.plan, self.compute.capabilities
        strawman_stores = _strawman().stores_output if self.central is not None else None
        tasks = range(len(plan))
        return JobShape(
            tasks=len(plan),
            pages=len(plan.pages),
            fan_ins=tuple(task for task in tasks if plan.fan_in(task) > 1),
            fan_outs=tuple(task for task in tasks if plan.fan_out(task) > 1),
            # Centralized executors store every output that anyone reads (see the strawman).
            stored_outputs=tuple(
                task
                for task in tasks
                if plan.stores_output(task)
                or (strawman_stores is not None and strawman_stores(plan.task(task)))
            ),
            metric_names=tuple(field.name for field in fields(Metrics)),
            delayed_io=self.locality.delayed_io,
            stored_payloads=self._may_store_payloads,
            bills_duration=capabilities.bills_duration,
            retries=capabilities.delivery.retries,
            speculates=capabilities.delivery.races,
            repeats_deliveries=capabilities.delivery.claims,
        )

    def sweep(self) -> None:
        """Remove the job's keys by prefix until none has appeared for ``cleanup_timeout`` seconds.

        For a job whose store failed or lost it, so that no live count tells when its executors
        have ended: they may write after the error (into a store that came back empty), and the
        store may be unreachable for a while. Gives up after three times ``cleanup_timeout``.
        """
        started = quiet_since = time.perf_counter()
        while time.perf_counter() - quiet_since < self.cleanup_timeout:
            try:
                found = self.stores.list_keys(self.keys.prefix)
                if found:
                    self.stores.delete(found, [] if self.stores.single else found)
                    quiet_since = time.perf_counter()
            except StorageError:
                quiet_since = time.perf_counter()  # unreachable: nothing is known to be quiet
            if time.perf_counter() - started > 3 * self.cleanup_timeout:
                logger.warning("job %s: its keys could not all be removed", self.keys.job)
                return
            time.sleep(0.2)

    def _wait_for_executors(self) -> None:
        deadline = time.perf_counter() + self.cleanup_timeout
        pause = 0.0005
        while (live := self.stores.metadata.increment(self.keys.live_executors, 0)) > 0:
            if time.perf_counter() > deadline:
                logger.warning(
                    "job %s: %d executor(s) still running after %.0f s; removing its keys anyway",
                    self.keys.job,
                    live,
                    self.cleanup_timeout,
                )
                return
            try:
                self.compute.check()
            except ComputeError:
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _read_usage(self) -> None:
        if not self.compute.capabilities.bills_duration:
            return
        metadata, keys = self.stores.metadata, self.keys
        invocations = metadata.increment(keys.invocations, 0)
        billed = metadata.increment(keys.billed_milliseconds, 0)
        self.report.usage = self.compute.usage(invocations, billed)

    def _read_task_records(self) -> None:
        """Take the task records stored so far; Dask's callbacks hear of their tasks."""
        while batch := self.view.metadata.pop_all(self.keys.task_records, timeout=0.001):
            self._task_blobs += batch
            if self.callbacks is not None:
                self.callbacks.tasks_ended(
                    record for blob in batch for record in timeline.decode(blob, self.graph.keys)
                )

    def _read_metrics(self) -> None:
        totals = Metrics.read(self.stores.metadata, self.keys)
        if self.monitoring.task_records or self.callbacks is not None:
            self._read_task_records()
        if not self.monitoring.task_records:
            self.report.metrics = JobMetrics(totals)
            return
        graph = self.graph
        self.report.metrics = JobMetrics.from_stored(
            totals, self._task_blobs, graph.keys, graph.dependencies, graph.order
        )


class _Silence:
    """Notices a job whose executors stopped showing signs of life: a lost invocation."""

    def __init__(self, job: Job):
        self.job = job
        self.limit = job.compute.capabilities.lost_after_seconds
        self.since = time.perf_counter()
        self.live = -1

    def observe(self, records_arrived: bool) -> None:
        """Note a poll; raise :class:`ComputeError` after too long without any change."""
        if self.limit is None:
            return
        now = time.perf_counter()
        live = self.job.stores.metadata.increment(self.job.keys.live_executors, 0)
        if records_arrived or live != self.live:
            self.since, self.live = now, live
        elif now - self.since > self.limit:
            raise ComputeError(
                f"job {self.job.keys.job}: no executor showed a sign of life for {self.limit:.0f} s "
                f"({live} invoked and not ended); {self.job.compute.describe()} lost an invocation "
                "(it failed or timed out, and so did the platform's retries)"
            )
