"""The executor: what runs in every worker, on every compute backend, for every invocation.

An invocation names one task. The executor runs it, then hands its output on:

1. **Write before count.** If another executor may need the output (``store_output``), it is stored
   before any counter is touched, so whoever sees a complete counter finds every input in storage.
2. **Fan-in.** For a dependent with several inputs the executor sets this input's bit in the
   dependent's counter and reads the count back in one atomic step. Only the executor that completes
   the counter goes on with that dependent; a retried executor sets the same bit and counts nothing.
3. **Fan-out.** Of the dependents that are ready, the executor *becomes* the first in the plan's
   preference order (runs it next, with this output still in memory) and invokes one new executor
   for each of the others, in one batch.
4. **Never wait.** With no ready dependent the executor ends.

It talks to storage and compute only through their interfaces. A requested key's output is stored
and then announced on the job's record list; a task that raises is announced there too (after the
job is marked failed, so executors that start later stop at once). Every executor decrements the
job's count of live executors when it ends, whatever happened, so the client knows when the job's
keys can be removed without an executor writing behind its back.

On a platform that may deliver an invocation twice, each delivery first claims its invocation; a
repeated one ends at once, and so does one that arrives after its job has ended (the job's live count
is zero then, since the first delivery was counted in before it was invoked). On a platform that
bills by duration, each executor adds its run time to the job's usage before it counts itself out.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from typing import Any

from wukong.backends.compute.base import ExecutorContext
from wukong.core import codec, records
from wukong.core.invocation import Invocation, decode_payload, encode_payloads
from wukong.core.keys import JobKeys
from wukong.core.partition import TaskPlan
from wukong.core.stores import Stores, open_stores
from wukong.errors import SerializationError, StorageError

logger = logging.getLogger("wukong.executor")

_MISSING = object()


class JobFailed(Exception):
    """Internal: another executor reported a failure; this one stops."""


class TaskFailed(Exception):
    """Internal: task ``task`` failed with ``error`` (a user exception or a storage problem)."""

    def __init__(self, task: int, key: Any, error: BaseException):
        super().__init__(task, key, error)
        self.task, self.key, self.error = task, key, error


class PageCache:
    """Schedule pages this process has loaded, most recent last, bounded in number."""

    def __init__(self, capacity: int = 256):
        self._capacity = capacity
        self._pages: OrderedDict[tuple[str, int], dict[int, TaskPlan]] = OrderedDict()
        self._lock = threading.Lock()

    def task(self, stores: Stores, keys: JobKeys, page: int, task: int) -> TaskPlan:
        """The plan of ``task``, loading its page from the metadata store on first use."""
        entry = (keys.job, page)
        tasks = self._pages.get(entry)
        if tasks is None:
            blob = stores.metadata.get(keys.page(page))
            if blob is None:
                raise StorageError(
                    f"schedule page {page} of job {keys.job} is not in {stores.metadata.describe()} "
                    "(the job ended, or its keys were removed)"
                )
            tasks = codec.loads(blob)
            with self._lock:
                self._pages[entry] = tasks
                while len(self._pages) > self._capacity:
                    self._pages.popitem(last=False)
        return tasks[task]


_pages = PageCache()


def handle_invocation(payload: bytes, context: ExecutorContext) -> None:
    """Run one invocation: the entry point every compute backend calls with a payload."""
    invocation = decode_payload(payload)
    if invocation is None:
        logger.debug("a repeated delivery arrived after its job ended; nothing to do")
        return
    Executor(invocation, open_stores(invocation.stores), context).run()


class Executor:
    """Runs a chain of tasks that starts with one invocation, as described in the module docstring."""

    def __init__(
        self,
        invocation: Invocation,
        stores: Stores,
        context: ExecutorContext,
    ):
        self.invocation = invocation
        self.stores = stores
        self.metadata = stores.metadata
        self.context = context
        self.keys = JobKeys(invocation.job)
        self.encoded = not stores.objects_stored_as_is
        self.max_object_bytes = stores.data.capabilities.max_object_bytes

    def run(self) -> None:
        """Run the chain; report a failure to the job; always count this executor out."""
        keys = self.keys
        if self.invocation.repeats_deliveries and not self._claim():
            return
        started = time.perf_counter()
        try:
            self._run_chain(self.invocation.task, self.invocation.page)
        except JobFailed:
            pass
        except TaskFailed as failure:
            self._report(failure.task, failure.key, failure.error)
        except Exception as error:  # storage failed outside a task: still tell the client
            self._report(self.invocation.task, None, error)
        finally:
            try:
                if self.invocation.bills_duration:
                    milliseconds = math.ceil((time.perf_counter() - started) * 1000)
                    self.metadata.increment(keys.billed_milliseconds, milliseconds)
                    self.metadata.increment(keys.invocations, 1)
                self.metadata.increment(keys.live_executors, -1)
            except StorageError:
                logger.exception("job %s: cannot count this executor out", keys.job)

    def _claim(self) -> bool:
        """Whether this is the first delivery of the invocation, and its job still runs."""
        keys, task = self.keys, self.invocation.task
        try:
            if self.metadata.increment(keys.claim(task), 1) > 1:
                logger.info("job %s: task %d delivered again; this delivery ends", keys.job, task)
                return False
            if self.metadata.increment(keys.live_executors, 0) > 0:
                return True
            # The job has ended (its keys are gone, or going): remove the claim just created.
            self.metadata.delete_many([keys.claim(task)])
        except StorageError:
            logger.exception("job %s: cannot claim the invocation of task %d", keys.job, task)
        return False

    def _run_chain(self, task: int, page: int) -> None:
        carried: dict[int, Any] = {}
        while True:
            plan = _pages.task(self.stores, self.keys, page, task)
            try:
                value = self._compute(task, plan, carried)
                become = self._hand_off(task, plan, value)
            except (TaskFailed, JobFailed):
                raise
            except Exception as error:
                raise TaskFailed(task, plan.key, error) from error
            if become is None:
                return
            # The dependent this executor becomes finds this output in memory; nothing else is kept.
            carried = {task: value}
            task, page = become.task, become.page

    def _compute(self, task: int, plan: TaskPlan, carried: dict[int, Any]) -> Any:
        inputs = {}
        missing = []
        for index, key in zip(plan.inputs, plan.input_keys, strict=True):
            value = carried.get(index, _MISSING)
            if value is _MISSING:
                missing.append((index, key))
            else:
                inputs[key] = value
        if missing:
            keys = self.keys
            failed, stored = self.stores.read_inputs(
                keys.failed, [keys.output(index) for index, _ in missing]
            )
            if failed:
                raise JobFailed
            for (_, key), blob in zip(missing, stored, strict=True):
                if blob is None:
                    raise StorageError(
                        f"input {key!r} of task {plan.key!r} is missing from "
                        f"{self.stores.data.describe()} (job {keys.job})"
                    )
                inputs[key] = codec.loads(blob) if self.encoded else blob
        try:
            return plan.node(inputs)
        except Exception as error:
            raise TaskFailed(task, plan.key, error) from error

    def _hand_off(self, task: int, plan: TaskPlan, value: Any):
        keys = self.keys
        fan_ins = [edge for edge in plan.dependents if edge.fan_in > 1]
        items = {keys.output(task): self._encode(plan, value)} if plan.store_output else {}
        if plan.is_result:
            self.stores.data.put_many(items)
            items = {}
            self.metadata.append(keys.records, records.encode(records.ResultRecord(task)))
        counts = self.stores.put_and_count(items, [(keys.counter(e.task), e.bit) for e in fan_ins])
        complete = {e.task for e, count in zip(fan_ins, counts, strict=True) if count == e.fan_in}
        ready = [e for e in plan.dependents if e.fan_in == 1 or e.task in complete]
        if not ready:
            return None
        become, *others = ready
        if others:
            # Counted before they start, so the live count never reads zero while they run.
            self.metadata.increment(keys.live_executors, len(others))
            invocations = [self.invocation.successor(e.task, e.page) for e in others]
            self.context.invoke(encode_payloads(invocations, self.stores))
        return become

    def _encode(self, plan: TaskPlan, value: Any) -> Any:
        if not self.encoded:
            return value
        try:
            blob = codec.dumps(value)
        except Exception as error:
            raise SerializationError(plan.key, error, what="result") from error
        if self.max_object_bytes is not None and len(blob) > self.max_object_bytes:
            raise StorageError(
                f"the result of task {plan.key!r} is {len(blob):,} bytes, more than "
                f"{self.stores.data.describe()} accepts ({self.max_object_bytes:,} bytes)"
            )
        return blob

    def _report(self, task: int, key: Any, error: BaseException) -> None:
        keys = self.keys
        record = records.ErrorRecord.from_exception(task, key, error)
        try:
            self.metadata.put(keys.failed, b"1")
            self.metadata.append(keys.records, records.encode(record))
        except StorageError:
            logger.exception("job %s: cannot report the failure of task %r", keys.job, key)
