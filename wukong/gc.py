"""``wukong gc``: see the jobs a store holds, and remove the ones that are over.

A job's keys normally go at the end of its job (see :mod:`wukong.core.keys`). They stay when its
client died first (killed, crashed, its machine gone), until they expire after ``key_ttl``, or for
good on a store that cannot expire keys. ``wukong gc`` finds them:

* every key under ``wukong/`` belongs to one job (``wukong/<job>/...``);
* a job's alive mark holds when it was submitted and its client's last heartbeat (every few seconds
  while the client waits); a persisted job's ``held`` mark does the same while its futures live. A
  job whose heartbeat is recent is **running** (or held) and never removed; one with an old
  heartbeat is **abandoned** (its client died); one with no mark has **ended** and only its
  leftovers remain (no executor can write to it any more).

Removing a job takes its alive mark first, so an executor still running writes nothing after, then
every key under its prefix. :func:`choose` decides, apart from any store, so it is tested alone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from wukong.core.job import HEARTBEAT_SECONDS, read_alive
from wukong.core.keys import ROOT, JobKeys, job_of
from wukong.core.stores import Stores

# A heartbeat older than this means the client is gone: many missed beats, so that a client slowed
# by a busy machine is not mistaken for a dead one.
STALE_AFTER_SECONDS = 12 * HEARTBEAT_SECONDS


@dataclass(frozen=True)
class StoredJob:
    """One job found in a store.

    Attributes:
        job: the job's id.
        keys: its keys, in both stores.
        nbytes: roughly how many bytes they take (``None``: the store cannot tell).
        submitted: when it was submitted (seconds since the epoch); ``None`` when it has ended.
        heartbeat: when its client last showed life; ``None`` when it has ended.

    """

    job: str
    keys: tuple[str, ...]
    nbytes: int | None
    submitted: float | None
    heartbeat: float | None

    def state(self, now: float, stale_after: float = STALE_AFTER_SECONDS) -> str:
        """``running``, ``abandoned`` (no heartbeat for ``stale_after`` s) or ``ended`` (leftovers only)."""
        if self.heartbeat is None:
            return "ended"
        return "running" if now - self.heartbeat < stale_after else "abandoned"

    def age(self, now: float) -> float | None:
        """Seconds since it was submitted (``None`` once it has ended: its mark held the time)."""
        return None if self.submitted is None else now - self.submitted


@dataclass(frozen=True)
class Choice:
    """What ``wukong gc`` will do: the jobs to remove, and those it refuses to, with why."""

    remove: list[StoredJob]
    refused: list[tuple[str, str]]


def choose(
    jobs: list[StoredJob],
    now: float,
    named: list[str] | None = None,
    older_than: float | None = None,
    stale_after: float = STALE_AFTER_SECONDS,
) -> Choice:
    """The jobs to remove: those ``named``, and those older than ``older_than`` seconds.

    A job that has ended counts as older than any age (it holds leftovers only). A running job (a
    heartbeat within ``stale_after`` seconds) is never removed: it is refused, whether named or
    old enough.
    """
    by_id = {job.job: job for job in jobs}
    remove: dict[str, StoredJob] = {}
    refused: list[tuple[str, str]] = []
    for name in named or ():
        if name not in by_id:
            refused.append((name, "no such job in this store"))
        else:
            remove[name] = by_id[name]
    if older_than is not None:
        for job in jobs:
            age = job.age(now)
            if age is None or age >= older_than:
                remove.setdefault(job.job, job)
    chosen = []
    for job in remove.values():
        if job.state(now, stale_after) == "running":
            beat = now - (job.heartbeat or now)
            refused.append(
                (job.job, f"running: its client showed life {beat:.0f} s ago; it removes its own keys")
            )
        else:
            chosen.append(job)
    return Choice(chosen, refused)


def find_jobs(stores: Stores) -> list[StoredJob]:
    """Every job with keys in ``stores``, oldest first (ended jobs last)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for key in stores.list_keys(ROOT):
        job = job_of(key)
        if job is not None:
            grouped[job].append(key)
    jobs = [_describe(stores, job, keys) for job, keys in grouped.items()]
    return sorted(jobs, key=lambda job: (job.submitted is None, job.submitted or 0.0, job.job))


def _describe(stores: Stores, job: str, keys: list[str]) -> StoredJob:
    prefix = JobKeys(job).prefix
    if stores.single:
        sizes = stores.metadata.sizes(keys)
    else:
        sizes = stores.metadata.sizes(stores.metadata.list_keys(prefix))
        sizes += stores.data.sizes(stores.data.list_keys(prefix))
    nbytes = None if None in sizes else sum(size for size in sizes if size is not None)
    marks = JobKeys(job)
    # A persisted job's outputs outlive it under its held mark, which reads as the alive mark.
    mark = stores.metadata.get(marks.alive) or stores.metadata.get(marks.held)
    submitted, heartbeat = (None, None) if mark is None else read_alive(mark)
    return StoredJob(job, tuple(sorted(keys)), nbytes, submitted, heartbeat)


def remove(stores: Stores, job: str) -> int:
    """Remove job ``job``'s keys, its alive mark first; return how many keys went."""
    keys = JobKeys(job)
    had_mark = stores.metadata.get(keys.alive) is not None
    stores.metadata.delete_many([keys.alive])  # first: no executor write lands after it
    found = stores.list_keys(keys.prefix)
    stores.delete(found, [] if stores.single else found)
    return len(found) + had_mark


def parse_age(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h`` or ``7d``; ``ValueError`` for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise ValueError(f"not an age: {text!r} (examples: 90s, 15m, 2h, 7d)")
    number, unit = match.groups()
    return float(number) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def format_table(jobs: list[StoredJob], now: float, stale_after: float = STALE_AFTER_SECONDS) -> str:
    """The jobs as a plain-text table: id, state, age, keys, bytes."""
    lines = [f"{'job':<18} {'state':<10} {'age':>9} {'keys':>8} {'bytes':>14}"]
    for job in jobs:
        age = job.age(now)
        shown_age = "-" if age is None else _duration(age)
        nbytes = "?" if job.nbytes is None else f"{job.nbytes:,}"
        lines.append(
            f"{job.job:<18} {job.state(now, stale_after):<10} {shown_age:>9} {len(job.keys):>8,} {nbytes:>14}"
        )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
