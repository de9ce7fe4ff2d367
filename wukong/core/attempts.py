"""How an executor counts itself and its successors in and out, however often its invocation runs.

The client removes a job's keys once the job's live count is zero, so every executor is counted in
before it is invoked and counts itself out when it ends, exactly once. An invocation may run more
than once, and each way needs its own care:

* **Repeated deliveries** (Lambda's at-least-once events): each delivery claims the invocation by
  its event id; the first event's deliveries own it, a duplicate event ends at once.
* **Retried crashes** (a worker died; the local pool or Lambda runs the invocation again): the
  retry replays its crashed attempt, which set counters that answer the retry as they answered it,
  so the retry makes the same decisions. What the attempt did to the live count leaves marks: a
  hand-off that counted successors in marks that (in the same batch), and so does the attempt's
  count-out; the retry counts in only what is not marked, and ends at once if the attempt had
  counted itself out.
* **Speculative backups** (the local pool starts a second attempt of a straggler while the first
  still runs): the two race. Every count goes through the store's ``increment_once``, so of the
  two exactly one counts each hand-off's successors in and one adds the metrics (the first
  to finish: it wins). Each attempt covers itself in the live count, so that no key is removed
  while either runs: the first attempt is covered by its invoker's count-in, the backup counts
  itself in as it starts, if the job is still alive. Each releases its own cover when it ends,
  once (a guard per cover); an attempt that starts after the race was won releases at once. The
  pool stops the loser and delivers it again as a retry, which finds the race won and lets go.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from wukong.backends.compute.base import ExecutorContext
from wukong.backends.storage.base import StorageBackend
from wukong.core import batches
from wukong.core.invocation import Invocation
from wukong.core.keys import JobKeys
from wukong.errors import ComputeError, JobEndedError, StorageError

logger = logging.getLogger("wukong.executor")


class Attempt:
    """One run of an invocation: whether it should run, and its count-ins and count-out."""

    def __init__(self, invocation: Invocation, metadata: StorageBackend, context: ExecutorContext):
        self.invocation, self.metadata, self.context = invocation, metadata, context
        self.model = invocation.options.delivery
        self.keys = JobKeys(invocation.job)
        self.task = invocation.task
        self.recovering = False  # a retry of an attempt that died
        self.backup = False  # a speculative second attempt
        self.ended = False  # counted out already, in a batch of the executor's own

    def begin(self) -> bool:
        """Whether this attempt should run (it may also end its part at once, and say no)."""
        model = self.model
        if model.claims and not self._claim():
            return False
        if model.races:
            return self._join_race()
        if model.retries:
            # The local pool says which deliveries are retries; where deliveries repeat, the one
            # that wins the claim may be one (a platform's retry carries its event's id).
            self.recovering = model.claims or self.context.delivery().retry
            if self.recovering and self._ended_before():
                return False
        return True

    def count_in(self, task: int, count: int) -> None:
        """Count in the ``count`` executors ``task``'s hand-off invokes, before they are invoked."""
        keys, live = self.keys, self.keys.live_executors
        if self.model.races:
            self.metadata.increment_once(keys.fanned_out(task), {live: count})
        elif not self.model.retries:
            self.metadata.increment(live, count)
        elif not (self.recovering and self.metadata.increment(keys.fanned_out(task), 0) > 0):
            # The count first: a store that applies them one by one and a crash in between must
            # leave one count too many (a job that waits), never one too few (keys removed early).
            self.metadata.increment_many({live: count, keys.fanned_out(task): 1})

    def count_out(self, counters: dict[str, int]) -> dict[str, int] | None:
        """``counters`` and this executor's count-out, to apply in one batch; ``None`` under speculation.

        The executor may send them with its last count (see
        :meth:`~wukong.core.stores.Stores.put_count_and_read`) and set :attr:`ended` if the store
        applied them. A speculative attempt ends by a race, apart.
        """
        if self.model.races:
            return None
        if self.model.retries:
            counters[self.keys.ended(self.task)] = 1
        counters[self.keys.live_executors] = -1
        return counters

    def end(self, counters: dict[str, int], task_records: bytes | None) -> None:
        """Send the task records and metrics (``counters``), then count this executor out."""
        keys = self.keys
        if self.ended:
            return
        try:
            amounts = self.count_out(counters)
            if amounts is None:
                self._finish_race(counters, task_records)
                return
            self._count_out(amounts, task_records)
        except JobEndedError:
            logger.info("job %s ended before the executor of task %d counted out", keys.job, self.task)
        except StorageError:
            logger.exception("job %s: cannot count the executor of task %d out", keys.job, self.task)

    def _count_out(self, counters: dict[str, int], task_records: bytes | None) -> None:
        """Records, metrics and count-out in one batch; without the records if they do not fit.

        One round trip where the store has the fast path; else the append, then the amounts.
        """
        if task_records is None:
            self.metadata.increment_many(counters)
            return
        try:
            batches.append_and_increment(self.metadata, self.keys.task_records, task_records, counters)
        except JobEndedError:
            raise
        except StorageError:
            # A full record list (memcached's items are bounded) must not keep the job from
            # ending: the append failed before any count, so count out without the records.
            logger.warning("job %s: task records of executor %d lost", self.keys.job, self.task)
            self.metadata.increment_many(counters)

    def _claim(self) -> bool:
        """Whether this delivery owns the invocation (its first event, or a retry of that event).

        Each event sets its own bit (from its id) in the claim: the first event's bit answers 1,
        to its first delivery and to the platform's retries of it alike; a duplicate event answers
        more, and ends. So does a delivery that comes after its job has ended.
        """
        keys, task = self.keys, self.task
        event = self.context.delivery().event_id
        if event is None:
            raise ComputeError(
                f"job {keys.job}: the compute backend repeats deliveries but gave task {task}'s "
                "no event id (its context's delivery().event_id), so a duplicate cannot be told apart"
            )
        bit = int.from_bytes(hashlib.blake2b(event.encode(), digest_size=4).digest(), "little") >> 1
        try:
            if self.metadata.set_bit_and_count(keys.claim(task), bit) > 1:
                logger.info("job %s: task %d delivered again; this delivery ends", keys.job, task)
                return False
            if self.metadata.increment(keys.live_executors, 0) > 0:
                return True
            # The job has ended (its keys are gone, or going): remove the claim just created.
            self.metadata.delete_many([keys.claim(task)])
        except JobEndedError:
            logger.debug("job %s: task %d delivered after its job ended", keys.job, task)
        except StorageError:
            logger.exception("job %s: cannot claim the invocation of task %d", keys.job, task)
        return False

    def _ended_before(self) -> bool:
        """Whether the crashed attempt this retries had counted itself out (its worker died after)."""
        job, task = self.keys.job, self.task
        try:
            ended = self.metadata.increment(self.keys.ended(task), 0) > 0
        except StorageError:
            logger.exception("job %s: cannot read whether the executor of task %d ended", job, task)
            return False
        if ended:
            logger.info("job %s: the executor of task %d had ended; its retry ends", job, task)
        return ended

    def _join_race(self) -> bool:
        """Speculation: whether this attempt runs; none does once the race is won."""
        delivery = self.context.delivery()
        self.backup, self.recovering = delivery.backup, delivery.retry
        if not (self.backup or self.recovering):
            return True  # a first attempt: a backup only starts after it, so nothing is won yet
        if self.backup and not self._cover_backup():
            return False  # the job is over
        if self.metadata.get(self.keys.won(self.task)) is None:
            return True
        self._release()  # a loser's retry, or a backup that came late: it only lets go
        return False

    def _cover_backup(self) -> bool:
        """Count a backup in, while the job is alive; whether it is covered (now, or before a crash).

        The count-in is conditional on the live count being positive, in the same atomic step: a
        backup that starts just as the first attempt ends the job must not add to a count the
        client has read as zero, and is removing.
        """
        keys, live = self.keys, self.keys.live_executors
        guard = keys.backup_in(self.task)
        if self.metadata.increment_once(guard, {live: 1}, while_positive=live):
            return True
        return self.recovering and self.metadata.get(guard) is not None

    def _finish_race(self, counters: dict[str, Any], task_records: bytes | None) -> None:
        """The first attempt to end adds the records and metrics; every attempt releases its cover."""
        keys = self.keys
        if self.metadata.increment_once(keys.won(self.task), counters) and task_records is not None:
            self.metadata.append(keys.task_records, task_records)
        self._release()

    def _release(self) -> None:
        keys, live = self.keys, {self.keys.live_executors: -1}
        guard = keys.backup_out(self.task) if self.backup else keys.ended(self.task)
        self.metadata.increment_once(guard, live)
