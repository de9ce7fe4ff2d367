"""One job on the client: store the schedules, invoke the leaves, wait for records, clean up.

The client is not a scheduler: once the leaves are invoked, executors schedule each other. The client
only waits on the job's record list (a blocking pop where the store has one), fails at the first
error record, checks the compute backend's health while it waits, reads the requested outputs in one
batch, and finally removes every key the job could have written, after the last executor has ended.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from wukong.backends.compute.base import ComputeBackend
from wukong.backends.storage.base import StorageBackend
from wukong.core import codec, records
from wukong.core.graph import TaskGraph
from wukong.core.invocation import Invocation
from wukong.core.keys import JobKeys
from wukong.core.partition import Plan
from wukong.core.report import JobReport
from wukong.errors import ComputeError, JobTimeoutError, SerializationError, StorageError

logger = logging.getLogger("wukong.job")

_POLL_SECONDS = 0.5


class Job:
    """A partitioned graph run once on a compute backend and a store."""

    def __init__(
        self,
        graph: TaskGraph,
        plan: Plan,
        compute: ComputeBackend,
        store: StorageBackend,
        store_spec: bytes,
        *,
        timeout: float | None,
        cleanup_timeout: float,
    ):
        self.graph, self.plan = graph, plan
        self.compute, self.store, self.store_spec = compute, store, store_spec
        self.timeout, self.cleanup_timeout = timeout, cleanup_timeout
        self.keys = JobKeys(uuid.uuid4().hex[:16])
        self.report = JobReport(
            job=self.keys.job,
            tasks=len(graph),
            leaves=len(plan.leaves),
            pages=len(plan.pages),
            compute=compute.describe(),
            storage=store.describe(),
        )

    def submit(self) -> None:
        """Store the schedule pages, count the leaves' executors in, and invoke them."""
        started = time.perf_counter()
        keys, plan = self.keys, self.plan
        self.store.put_many({keys.page(page): self._encode_page(page) for page in range(len(plan.pages))})
        self.store.increment(keys.live_executors, len(plan.leaves))
        self.compute.invoke(
            [Invocation(keys.job, self.store_spec, leaf, plan.page_of[leaf]).encode() for leaf in plan.leaves]
        )
        self.report.seconds["submit"] = time.perf_counter() - started

    def _encode_page(self, page: int) -> bytes:
        contents = self.plan.page_contents(page)
        try:
            return codec.dumps(contents)
        except Exception:
            for plan in contents.values():  # find the task to blame
                try:
                    codec.dumps_code(plan.node)
                except Exception as error:
                    raise SerializationError(plan.key, error) from error
            raise

    def wait(self) -> list[Any]:
        """Wait for every requested output and return them in the order of ``graph.results``."""
        started = time.perf_counter()
        deadline = None if self.timeout is None else started + self.timeout
        pending = set(self.graph.results)
        for record in self._records(deadline):
            if isinstance(record, records.ErrorRecord):
                self.report.seconds["run"] = time.perf_counter() - started
                raise record.to_exception(self.keys.job)
            pending.discard(record.task)
            if not pending:
                break
        self.report.seconds["run"] = time.perf_counter() - started

        started = time.perf_counter()
        keys = self.keys
        stored = self.store.get_many([keys.output(task) for task in self.graph.results])
        if any(blob is None for blob in stored):
            raise StorageError(f"a result of job {keys.job} vanished from {self.store.describe()}")
        if not self.store.capabilities.stores_objects:
            stored = [codec.loads(blob) for blob in stored]
        self.report.seconds["collect"] = time.perf_counter() - started
        return stored

    def _records(self, deadline: float | None) -> Iterator[records.Record]:
        while True:
            wait = _POLL_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - time.perf_counter())
                if wait <= 0:
                    raise JobTimeoutError(
                        f"job {self.keys.job} did not finish within its timeout of "
                        f"{self.timeout} s ({len(self.graph)} tasks on {self.compute.describe()})"
                    )
            batch = self.store.pop_all(self.keys.records, timeout=wait)
            if not batch:
                self.compute.check()
            for data in batch:
                yield records.decode(data)

    def cleanup(self, failed: bool, compute_broken: bool = False) -> None:
        """Remove every key the job could have written, once no executor of it is alive.

        After a failure the job is marked failed first, so executors still queued end at once.
        When the compute backend is broken, executors that died will never count themselves out,
        so the client does not wait for them.
        """
        started = time.perf_counter()
        keys, store = self.keys, self.store
        try:
            if failed:
                store.put(keys.failed, b"1")
            if not compute_broken:
                self._wait_for_executors()
            store.delete_many(self._all_keys())
        finally:
            self.report.seconds["cleanup"] = time.perf_counter() - started

    def _wait_for_executors(self) -> None:
        deadline = time.perf_counter() + self.cleanup_timeout
        pause = 0.0005
        while (live := self.store.increment(self.keys.live_executors, 0)) > 0:
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

    def _all_keys(self) -> Iterator[str]:
        keys, plan = self.keys, self.plan
        yield keys.records
        yield keys.live_executors
        yield keys.failed
        for page in range(len(plan.pages)):
            yield keys.page(page)
        for task, task_plan in enumerate(plan.tasks):
            if task_plan.store_output:
                yield keys.output(task)
            if len(task_plan.inputs) > 1:
                yield keys.counter(task)
