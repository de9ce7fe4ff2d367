"""The executor: what runs in every worker, on every compute backend, for every invocation.

An invocation names one task. The executor runs it, then hands its output on. What to do is
decided by :mod:`wukong.core.decisions` (pure functions of the plan, the policy, the output's size
and the counters' answers); the executor carries it out in this order:

1. **Write before count.** If another executor may need the output (``store_output``), it is stored
   before any counter is touched, so whoever sees a complete counter finds every input in storage.
2. **Fan-in.** For a dependent with several inputs the executor sets this input's bit in the
   dependent's counter and reads the count back in one atomic step. Only the executor that completes
   the counter goes on with that dependent; a retried executor sets the same bit and counts nothing.
3. **Fan-out.** Of the dependents that are ready, the executor *becomes* the first in the plan's
   preference order (runs it next, with this output still in memory) and invokes one new executor
   for each of the others, in one batch.
4. **Never wait.** With no ready dependent the executor ends.

Big outputs (at least ``big_object_bytes`` serialized) change steps 3 and 4 (SoCC'20):

- **Clustering.** The executor runs every ready dependent itself, in preference order, instead of
  invoking executors that would read the output from storage.
- **Delayed I/O.** For a dependent whose other inputs are not all in yet, the first executor to hold a
  big input of it (a counter of holders decides) waits for them, polling the counter, for a bounded
  time; then it counts and runs the dependent itself, and its output is never written. Later holders
  of big inputs of the same dependent write and count at once, so holders never wait for each other.
  A wait that runs out writes the output, then counts, as in step 1. An executor left with only
  waits *parks* (:meth:`ExecutorContext.park`): where the compute backend can, the worker runs other
  invocations and resumes it now and then; elsewhere it waits in place.
- **Locality cache.** Outputs stay in the executor's memory while a task queued in it needs them,
  and, within a byte budget, while a dependent it may still run here is not ready; inputs found there
  are never read from storage.

It talks to storage and compute only through their interfaces. A requested key's output is stored
and then announced on the job's record list; a task that raises is announced there too (after the
job is marked failed, so executors that start later stop at once). Every executor decrements the
job's count of live executors when it ends, whatever happened, so the client knows when the job's
keys can be removed without an executor writing behind its back.

An invocation may run more than once: delivered twice, retried after its worker died, or run by
a speculative backup beside a straggler. Every decision above comes from counters that answer a
repeated setting as they answered the first, so each run makes the same decisions, and
:class:`~wukong.core.attempts.Attempt` keeps the live count exact across runs (claims, marks,
guarded counts). A delivery that arrives after its job has ended ends at once. On a platform that
bills by duration, each executor adds its run time to the job's usage before it counts itself out.

For experiments, a subclass may hand outputs on otherwise (the PDSW'19 strawman's, in
:mod:`wukong.experiments.strawman`); the job names it in its options.

Each executor also keeps a timeline of its tasks (see :mod:`wukong.monitoring.timeline`) and its last
log lines; it stores the timeline with its metrics and count-out, in one round trip, and a failed
task's error record carries the log lines.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from types import GeneratorType
from typing import Any, NamedTuple

from wukong.backends.compute.base import ExecutorContext
from wukong.backends.compute.environment import check_hash_seed
from wukong.backends.storage.base import CountOut
from wukong.core import codec, decisions, records, shuffles
from wukong.core.attempts import Attempt
from wukong.core.decisions import WaitStep
from wukong.core.futures import held_key
from wukong.core.invocation import Invocation, decode_payload, encode_payloads
from wukong.core.keys import JobKeys
from wukong.core.locality import MISSING, LocalityCache
from wukong.core.partition import Edge, TaskPlan, page_plans
from wukong.core.stores import Stores, open_stores
from wukong.errors import JobEndedError, MissingKeyError, SerializationError, StorageError
from wukong.monitoring import logs
from wukong.monitoring.metrics import Metrics
from wukong.monitoring.timeline import ExecutorTimeline

logger = logging.getLogger("wukong.executor")


class JobFailed(Exception):
    """Internal: another executor reported a failure, or the job timed out; this one stops."""


class JobGone(JobFailed):
    """Internal: the job's keys are gone (the client gave up on it); stop without writing a thing."""


_READ_AHEAD_MOST = 16  # the widest fan-in whose other inputs a count brings along
_FOLD_MOST_TASKS = 64  # the most tasks of an executor whose count-out travels with its counts
_POLL_LEAST_SECONDS, _POLL_MOST_SECONDS = 0.001, 0.05  # between looks at delayed-I/O waits
_CHECK_SECONDS = 0.5  # how often a running executor looks whether its job has failed
_LOST_KEY_CAUSES = (
    "the store evicted it or restarted empty, or the job ran longer than its keys live: "
    "raise key_ttl above the job's run time"
)

_GENERATOR_RESULT = (
    "the task returned a generator, which can be read only once and cannot be stored or sent to "
    "another executor (as under Dask's processes scheduler); return a list (list(...) around it)"
)


class TaskFailed(Exception):
    """Internal: task ``task`` failed with ``error`` (a user exception or a storage problem)."""

    def __init__(self, task: int, key: Any, error: BaseException):
        super().__init__(task, key, error)
        self.task, self.key, self.error = task, key, error


class PageCache:
    """Schedule pages this process has loaded, least recently used first, bounded in number.

    The executors of one process (threads of the simulated Lambda, a worker's parked executors)
    often need one page at once, as a batch of leaves starts: the first to ask loads it and the
    others wait for it, rather than each reading and decoding it again.
    """

    def __init__(self, capacity: int = 256):
        self._capacity = capacity
        self._pages: OrderedDict[tuple[str, int], dict[int, TaskPlan]] = OrderedDict()
        self._loading: dict[tuple[str, int], threading.Event] = {}
        self._lock = threading.Lock()

    def task(self, stores: Stores, keys: JobKeys, page: int, task: int, metrics: Metrics) -> TaskPlan:
        """The plan of ``task``, loading its page from the metadata store on first use."""
        entry = (keys.job, page)
        while True:
            tasks = self._pages.get(entry)  # no lock on a hit: a thousand threads may ask at once
            if tasks is not None:
                with contextlib.suppress(KeyError):  # another thread evicted it just now
                    self._pages.move_to_end(entry)
                return tasks[task]
            with self._lock:
                if entry in self._pages:
                    continue
                loading = self._loading.get(entry)
                if loading is None:
                    loading = self._loading[entry] = threading.Event()
                    break
            loading.wait()  # then look again: a loader that failed left it to us
        try:
            tasks = self._load(stores, keys, page, metrics)
            with self._lock:
                self._pages[entry] = tasks
                while len(self._pages) > self._capacity:
                    self._pages.popitem(last=False)
        finally:
            with self._lock:
                del self._loading[entry]
            loading.set()
        return tasks[task]

    @staticmethod
    def _load(stores: Stores, keys: JobKeys, page: int, metrics: Metrics) -> dict[int, TaskPlan]:
        blob = stores.metadata.get(keys.page(page))
        if blob is None and stores.metadata.get(keys.alive) is None:
            raise JobGone
        if blob is None:
            raise StorageError(
                f"schedule page {page} of job {keys.job} is not in {stores.metadata.describe()} "
                f"({_LOST_KEY_CAUSES})"
            )
        metrics.metadata_bytes_read += len(blob)
        return page_plans(codec.loads(blob))

    def cached(self, keys: JobKeys, page: int, task: int) -> TaskPlan | None:
        """The plan of ``task`` if its page is loaded already, else ``None`` (never a read)."""
        tasks = self._pages.get((keys.job, page))
        return None if tasks is None else tasks[task]


_pages = PageCache()


def handle_invocation(payload: bytes, context: ExecutorContext) -> None:
    """Run one invocation: the entry point every compute backend calls with a payload."""
    invocation = decode_payload(payload)
    if invocation is None:
        logger.debug("a repeated delivery arrived after its job ended; nothing to do")
        return
    executor = _executor_class(invocation.options.executor)
    executor(invocation, open_stores(invocation.stores), context).run()


@functools.cache
def _executor_class(path: str | None) -> type[Executor]:
    """The executor a job's options name (``module:Class``, an experiment's), else wukong's own."""
    if path is None:
        return Executor
    module, _, name = path.partition(":")
    executor: type[Executor] = getattr(importlib.import_module(module), name)
    return executor


class Executor:
    """Runs a chain of tasks that starts with one invocation, as described in the module docstring."""

    def __init__(
        self,
        invocation: Invocation,
        stores: Stores,
        context: ExecutorContext,
    ):
        self.invocation = invocation
        self.options = invocation.options
        self.metrics = Metrics(executors=1)
        self.timeline = ExecutorTimeline(invocation.task, self.options.task_records)
        self.log_lines: deque[str] | None = None
        self.cache = LocalityCache(self.options.cache_bytes)
        self.queued: list[tuple[int, int]] = []  # (task, page) to run here, the next one last
        # Inputs of the next task read along with the count that made it ready (task: stored form).
        self.read_ahead: dict[int, Any] = {}
        self.keys = JobKeys(invocation.job)
        # Every write of the executor lands only while its job is alive (see wukong.core.fence).
        # The platform may show them through a model of its own (the simulated Lambda's bandwidth).
        stores = stores.scoped(self.keys.alive, self.options.key_ttl_seconds).through(context.storage)
        self.stores = stores
        self.metadata = stores.metadata
        self.context = context
        self.encoded = not stores.objects_stored_as_is
        self.max_object_bytes = stores.data.capabilities.max_object_bytes
        self.attempt = Attempt(invocation, stores.metadata, context)
        self.policy = decisions.Policy.of(self.options)
        self.waits: list[_Wait] = []  # delayed I/O in progress
        self._poll_delay = _POLL_LEAST_SECONDS
        self._checked = time.monotonic()  # when it last looked whether the job failed
        self._started = time.perf_counter()

    def run(self) -> None:
        """Run the chain; report a failure to the job; always count this executor out.

        An executor left with nothing to run but delayed-I/O waits parks with the worker, which
        resumes it while it runs other invocations; where the worker cannot, it waits here.
        """
        if not self.attempt.begin():
            return
        self._started = time.perf_counter()
        delay = self._advance(self._start_chain)
        if delay is None or self.context.park(self.resume):
            return
        while delay is not None:
            time.sleep(delay)
            delay = self.resume()

    def resume(self) -> float | None:
        """Look at the waits, run what became ready; seconds until the next look, ``None``: ended."""
        return self._advance(self._poll_waits)

    def _start_chain(self) -> None:
        check_hash_seed(self.options.hash_seed)
        self.queued.append((self.invocation.task, self.invocation.page))
        self._run_queued()

    def _advance(self, step: Callable[[], None]) -> float | None:
        """Take ``step``; the seconds until the waits want a look, or ``None`` once the executor ended."""
        try:
            with logs.captured(self.options.log_lines, self.log_lines) as self.log_lines:
                step()
            if self.waits:
                delay, self._poll_delay = self._poll_delay, min(self._poll_delay * 2, _POLL_MOST_SECONDS)
                return delay
        except (JobGone, JobEndedError):
            self.waits.clear()
            return None  # the job has ended: nothing it writes now would land, the count-out included
        except JobFailed:
            self.waits.clear()
        except TaskFailed as failure:
            self.waits.clear()
            self._report(failure.task, failure.key, failure.error)
        except Exception as error:  # storage failed outside a task: still tell the client
            self.waits.clear()
            self._report(self.invocation.task, None, error)
        except BaseException:  # an interrupt outside any task: count out, then let it go on
            self.waits.clear()
            self._end()
            raise
        self._end()
        return None

    def _end(self) -> None:
        """Count this executor out, unless its last count did already."""
        # Task records, metrics (and billing) first, then the count out, in one batch: the client
        # reads them only once the live count is zero.
        if not self.attempt.ended:
            self.attempt.end(self._figures(), self.timeline.encode())

    def _figures(self) -> dict[str, int]:
        """The metrics (and billing) to add to the job's counters as the executor ends."""
        keys = self.keys
        counters = self.metrics.increments(keys)
        if self.options.bills_duration:
            counters[keys.billed_milliseconds] = math.ceil((time.perf_counter() - self._started) * 1000)
            counters[keys.invocations] = 1
        return counters

    def _check_job(self) -> None:
        """Every half second or so of running, stop if the job failed or its keys are gone.

        Executors of a failed job also stop at their next input read, which carries the failure
        mark; this catches chains that read nothing (their inputs stay in memory) and long tasks,
        whose results would otherwise be written after the client has cleaned up.
        """
        now = time.monotonic()
        if now - self._checked < _CHECK_SECONDS:
            return
        self._checked = now
        failed, alive = self.metadata.get_many([self.keys.failed, self.keys.alive])
        if alive is None:
            raise JobGone
        if failed is not None:
            raise JobFailed

    def _run_queued(self) -> None:
        """Run the queued tasks, and the dependents they make ready here, until none is left."""
        while self.queued:
            task, page = self.queued.pop()
            plan = _pages.task(self.stores, self.keys, page, task, self.metrics)
            try:
                self._check_job()
                value = self._compute(task, plan)
                self._check_job()  # a long task: the job may have failed meanwhile
                here = self._hand_off(task, plan, value)
            except (TaskFailed, JobFailed, JobEndedError):
                raise
            except Exception as error:
                raise TaskFailed(task, plan.key, error) from error
            # Run them in preference order: the first is popped first.
            self.queued.extend((edge.task, edge.page) for edge in reversed(here))

    def _compute(self, task: int, plan: TaskPlan) -> Any:
        self.timeline.start(task)
        inputs = {}
        missing = []
        nbytes = 0
        arrived = []  # (key, stored form)
        for index, key in zip(plan.inputs, plan.input_keys, strict=True):
            value = self.cache.get(index)
            if value is not MISSING:
                inputs[key] = value
                self.metrics.reads_avoided += 1
            elif index in self.read_ahead:
                arrived.append((key, self.read_ahead.pop(index)))
            else:
                missing.append((index, key))
        if missing:
            keys = self.keys
            failed, stored = self.stores.read_inputs(
                keys.failed, [keys.output(index) for index, _ in missing]
            )
            if failed:
                raise JobFailed
            arrived += zip((key for _, key in missing), stored, strict=True)
        if arrived:
            keys = self.keys
            for key, blob in arrived:
                if blob is None:
                    raise StorageError(
                        f"input {key!r} of task {plan.key!r} is missing from "
                        f"{self.stores.data.describe()} (job {keys.job}; {_LOST_KEY_CAUSES})"
                    )
                nbytes += len(blob) if self.encoded else codec.measure_kept(blob)
                inputs[key] = codec.loads(blob) if self.encoded else blob
            self.metrics.data_bytes_read += nbytes
        self.timeline.read(task, nbytes)
        try:
            held = held_key(plan.node)
            value = plan.node(inputs) if held is None else self._read_held(plan, held)
        except BaseException as error:  # SystemExit too: Dask hands the caller whatever a task raised
            raise TaskFailed(task, plan.key, error) from error
        if isinstance(value, GeneratorType):
            raise TaskFailed(task, plan.key, TypeError(_GENERATOR_RESULT))
        if type(value).__module__.startswith("partd"):  # a disk shuffle's directory: the job's now
            for path in shuffles.claim_directories(value):
                self.metadata.append(self.keys.records, records.encode(records.ScratchRecord(path)))
        self.metrics.tasks_run += 1
        self.timeline.computed(task)
        for index in plan.inputs:
            self.cache.used(index)
        return value

    def _read_held(self, plan: TaskPlan, store_key: str) -> Any:
        """A persisted value (see :mod:`wukong.core.futures`): read from the store, not computed."""
        blob = self.stores.data.get(store_key)
        if blob is None:
            raise MissingKeyError(
                f"the persisted value of {plan.key!r} is gone from {self.stores.data.describe()} "
                f"({store_key}): its futures were released, it expired after key_ttl, or `wukong "
                "gc` removed it; persist the collection again",
                [plan.key],
            )
        nbytes = len(blob) if self.encoded else codec.measure_kept(blob)
        self.metrics.data_bytes_read += nbytes
        return codec.loads(blob) if self.encoded else blob

    def _hand_off(self, task: int, plan: TaskPlan, value: Any) -> list[Edge]:
        """Store, count and invoke as :mod:`wukong.core.decisions` says; return the tasks to run here.

        The order is the protocol's: a requested output is stored and announced first; the output
        is written before any count (in :meth:`_count`) and before any invocation; successors are
        counted in before they are invoked.
        """
        policy = self.policy
        output = _Output(self, task, plan, value)
        big = policy.size_matters(plan) and policy.is_big(plan, output.size)
        holders = decisions.holders_to_ask(plan, policy, big)
        counting = decisions.decide_counting(plan, policy, big, self._first_holder_of(holders))
        if plan.is_result:
            output.store_now()
            self.metadata.append(self.keys.records, records.encode(records.ResultRecord(task)))
        complete = self._count(output, counting.counted, counting.store, counting.next_here)
        if counting.kept:
            complete |= self._start_waits(output, counting.kept)
        routing = decisions.decide_routing(plan, policy, big, counting, complete)
        if routing.store:
            output.store_now()
        self.timeline.written(task)
        if routing.invoked:
            self._invoke(task, routing.invoked)
        if not output.waits:
            output.settle()
        if routing.here or routing.cache:
            size = output.size if routing.cache else 0
            self.cache.hold(task, value, size, len(routing.here), routing.cache)
        return list(routing.here)

    def _invoke(self, task: int, edges: Sequence[Edge]) -> None:
        """Count the executors of ``edges`` in, then invoke them (so the live count never reads 0)."""
        self.attempt.count_in(task, len(edges))
        invocations = [self.invocation.successor(e.task, e.page) for e in edges]
        self.context.invoke(encode_payloads(invocations, self.stores))
        self.timeline.invoked(task, len(edges))

    def _count(
        self, output: _Output, edges: Sequence[Edge], store: bool, next_here: Edge | None = None
    ) -> set[int]:
        """Write the output if ``store`` (first), set the edges' bits; return completed dependents.

        ``next_here``, the one edge, runs here if this count completes it. Where the store can, the
        count then also reads its other inputs, or, if the executor has nothing else to do, counts
        the executor out: either way in the same round trip.
        """
        keys = self.keys
        items = output.items() if store else {}
        counters = [(keys.counter(e.task), e.bit) for e in edges]
        if next_here is None:
            counts = self.stores.put_and_count(items, counters)
            if items:
                output.written()
            return {e.task for e, count in zip(edges, counts, strict=True) if count == e.fan_in}
        wanted = self._inputs_to_read(output.task, next_here)
        if items:
            output.written()  # counted in the figures the count-out may carry
        counted = self.stores.put_count_and_read(
            items,
            counters[0],
            next_here.fan_in,
            keys.failed,
            [keys.output(index) for index in wanted],
            self._last_batch(output.task),
        )
        self.attempt.ended = counted.ended
        for index, value in zip(wanted, counted.values or (), strict=False):
            if value is not None:  # a missing input: the dependent's own read names it
                self.read_ahead[index] = value
        return {next_here.task} if counted.count == next_here.fan_in else set()

    def _last_batch(self, task: int) -> CountOut | None:
        """The count-out to send with ``task``'s count, if nothing else is left to run here.

        Every such count carries it, the ones that complete a counter too, so an executor that has
        run many tasks sends its count-out on its own: encoding its records at each count would
        cost it time quadratic in their number.
        """
        if self.queued or self.waits or len(self.timeline) > _FOLD_MOST_TASKS:
            return None
        amounts = self.attempt.count_out(self._figures())
        if amounts is None:
            return None
        self.timeline.written(task)
        return CountOut(self.keys.task_records, self.timeline.encode(), amounts)

    def _inputs_to_read(self, task: int, edge: Edge) -> list[int]:
        """The inputs of ``edge``'s dependent, besides ``task``, that it would read from the store.

        Known only when the dependent's page is loaded already: finding out must cost no read. A
        wide fan-in reads its inputs itself: every one of its many counts would carry their keys.
        """
        if edge.fan_in > _READ_AHEAD_MOST:
            return []
        plan = _pages.cached(self.keys, edge.page, edge.task)
        if plan is None:
            return []
        return [index for index in plan.inputs if index != task and index not in self.cache]

    def _first_holder_of(self, edges: list[Edge]) -> set[int]:
        """Set this output's bit in each dependent's holder counter; those where it came first.

        Holders are counted by bits, so a retry is the first holder again exactly when its attempt
        was.
        """
        holders = self.metadata.set_bit_and_count
        return {edge.task for edge in edges if holders(self.keys.holders(edge.task), edge.bit) == 1}

    def _start_waits(self, output: _Output, kept: Sequence[Edge]) -> set[int]:
        """Count the kept dependents whose other inputs are in; wait for the rest (delayed I/O).

        The executor goes on with its queued tasks and looks at the waits (:meth:`resume`) when it
        has nothing else to run.
        """
        deadline = time.monotonic() + self.policy.wait_seconds(self.context.remaining_seconds())
        ripe = []
        for edge in kept:
            if decisions.decide_wait(self._others_in(edge), timed_out=False) is WaitStep.COUNT:
                ripe.append(edge)
            else:
                self.waits.append(_Wait(edge, output, deadline))
                output.waits += 1
        return self._count(output, ripe, store=False)

    def _others_in(self, edge: Edge) -> bool:
        return self.metadata.count_bits(self.keys.counter(edge.task)) >= edge.fan_in - 1

    def _poll_waits(self) -> None:
        """Count each kept dependent whose other inputs are in, or whose wait ran out; run those ready."""
        if self.metadata.get(self.keys.failed) is not None:
            raise JobFailed
        now, waits, self.waits = time.monotonic(), self.waits, []
        for wait in waits:
            edge, output = wait.edge, wait.output
            step = decisions.decide_wait(self._others_in(edge), timed_out=now >= wait.deadline)
            if step is WaitStep.WAIT:
                self.waits.append(wait)
                continue
            if step is WaitStep.STORE_AND_COUNT:
                self.metrics.delayed_io_timeouts += 1
            if edge.task in self._count(output, [edge], store=step is WaitStep.STORE_AND_COUNT):
                self.cache.pin(output.task, output.value)
                self.queued.append((edge.task, edge.page))
            output.waits -= 1
            if not output.waits:
                output.settle()
        if self.queued:
            self._poll_delay = _POLL_LEAST_SECONDS
            self._run_queued()

    def encode(self, plan: TaskPlan, value: Any) -> Any:
        """The stored form of ``value``: bytes, unless the data store keeps objects."""
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
        logged = "\n".join(self.log_lines or ())
        record = records.ErrorRecord.from_exception(task, key, error, logged)
        try:
            self.metadata.put(keys.failed, b"1")
            self.metadata.append(keys.records, records.encode(record))
        except JobEndedError:
            logger.info("job %s ended before the failure of task %r could be reported", keys.job, key)
        except StorageError:
            logger.exception("job %s: cannot report the failure of task %r", keys.job, key)


class _Output:
    """A task's output on its way out: measured once, encoded at most once, stored at most once."""

    def __init__(self, executor: Executor, task: int, plan: TaskPlan, value: Any):
        self._executor, self._plan = executor, plan
        self.task, self.value = task, value
        self._size: int | None = None
        self._stored_form: Any = MISSING
        self.stored = False
        self.waits = 0  # delayed-I/O waits still holding it

    @property
    def size(self) -> int:
        """The serialized size (measured without copying big buffers)."""
        if self._size is None and self._executor.encoded and self._plan.store_output and not self._maybe_big:
            self._encode()  # the plan stores it unless it turns out big: serialize once, measure that
        if self._size is None:
            try:
                self._size = codec.measure(self.value)
            except Exception as error:
                if self._executor.encoded:
                    raise SerializationError(self._plan.key, error, what="result") from error
                self._size = 0  # a store that keeps objects never serializes it: no size to speak of
        return self._size

    @property
    def _maybe_big(self) -> bool:
        """Whether it holds a buffer of a big object's size.

        Such an output is measured without copying: kept local, it is never serialized at all
        (serializing big blocks only to measure them cost SVD2 a third of its time).
        """
        nbytes = getattr(self.value, "nbytes", None)
        return isinstance(nbytes, int) and nbytes >= self._executor.options.big_object_bytes

    def items(self) -> dict[str, Any]:
        """What to write for it: nothing once it is stored."""
        if self.stored:
            return {}
        return {self._executor.keys.output(self.task): self._encode()}

    def _encode(self) -> Any:
        if self._stored_form is MISSING:
            self._stored_form = self._executor.encode(self._plan, self.value)
            if self._executor.encoded:
                self._size = len(self._stored_form)
        return self._stored_form

    def written(self) -> None:
        """The items were stored (by whoever sent them)."""
        self.stored = True
        self._executor.metrics.data_bytes_written += self.size
        self._executor.timeline.wrote(self.task, self.size)

    def settle(self) -> None:
        """Its fate is sealed: count it as kept local if the plan would have stored it."""
        if self._plan.store_output and not self.stored:
            self._executor.metrics.objects_kept_local += 1

    def store_now(self) -> None:
        """Write it by itself, unless it is stored already."""
        items = self.items()
        if items:
            self._executor.stores.data.put_many(items)
            self.written()


class _Wait(NamedTuple):
    """Delayed I/O in progress: ``output`` is held for ``edge``'s dependent until ``deadline``."""

    edge: Edge
    output: _Output
    deadline: float
