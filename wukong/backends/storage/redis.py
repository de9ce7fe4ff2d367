"""Redis as a wukong store: objects are strings, counters are hashes, records are a list.

A view scoped to a job (:meth:`RedisStorage.scoped`) runs every write as a script that first checks
the job's alive mark, so the check and the write are one atomic step, and gives each key it writes
the scope's lifetime in the same script. Objects over 64 KiB, which a script would copy, are sent
as plain ``SET ... PX`` instead, followed in the same pipeline by a guarded script (a counter's) or
a look at the mark; a writer that finds the mark gone removes what it wrote. Either way a write made
after the job ended leaves nothing, at no extra round trip.

The commands on one key each live in :class:`RedisStoreBase`, which the single-server store and the
cluster store (:mod:`wukong.backends.storage.redis_cluster`) both build on; each writes its batches
(:class:`~wukong.backends.storage.base.BatchedWrites`) its own way.
"""

from __future__ import annotations

import functools
import hashlib
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis
from pydantic import Field
from redis.connection import Encoder, HiredisRespSerializer, PythonRespSerializer
from redis.exceptions import NoScriptError, RedisClusterException, ResponseError

from wukong.backends.options import BackendOptions
from wukong.backends.storage.base import (
    Counted,
    CountOut,
    StorageBackend,
    StorageCapabilities,
    WriteScope,
    translate_errors,
)
from wukong.backends.storage.held_connections import HeldConnections
from wukong.errors import JobEndedError

# One round trip, atomic: a counter is a hash from each bit set to the count it made, so setting a
# bit again returns the count its first setting saw.
SET_BIT_AND_COUNT = """
local seen = redis.call('HGET', KEYS[1], ARGV[1])
if seen then return tonumber(seen) end
local count = redis.call('HLEN', KEYS[1]) + 1
redis.call('HSET', KEYS[1], ARGV[1], count)
return count
"""

INCREMENT_MANY = """
for index, key in ipairs(KEYS) do
    redis.call('INCRBY', key, ARGV[index])
end
"""

# KEYS: the guard, the counter that must be positive (or the guard again, for none), then the
# counters; ARGV: whether there is a condition, then the amounts. Returns 1 when it applied them.
INCREMENT_ONCE = """
if ARGV[1] == '1' and tonumber(redis.call('GET', KEYS[2]) or '0') <= 0 then return 0 end
if not redis.call('SET', KEYS[1], 1, 'NX') then return 0 end
for index = 3, #KEYS do
    redis.call('INCRBY', KEYS[index], ARGV[index - 1])
end
return 1
"""

# KEYS: the list, then the counters; ARGV: the record, then the amounts.
APPEND_AND_INCREMENT = """
redis.call('RPUSH', KEYS[1], ARGV[1])
for index = 2, #KEYS do
    redis.call('INCRBY', KEYS[index], ARGV[index])
end
"""

# The scoped view's scripts all start here. KEYS[1] is the job's alive mark; ARGV[1] is '1' when
# the write requires it, ARGV[2] the keys' lifetime in milliseconds ('0': none). The scripts' own
# keys and arguments follow, from KEYS[2] and ARGV[3].
_SCOPE = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('WUKONG-ENDED the job has ended')
end
local ttl = tonumber(ARGV[2])
"""
# A key gets its lifetime when a write creates it, inline in each script below (a Lua function
# defined in the prelude would be built again on every call).
ENDED_REPLY = "WUKONG-ENDED"


def _add(first: str, shift: str) -> str:
    """Lua: INCRBY each of KEYS[first..] by ARGV[its index + shift]; a key it creates gets its lifetime."""
    return f"""
for index = {first}, #KEYS do
    local amount = ARGV[index + {shift}]
    local value = redis.call('INCRBY', KEYS[index], amount)
    if ttl > 0 and value == tonumber(amount) then redis.call('PEXPIRE', KEYS[index], ttl) end
end
"""


# Lua: set bit ARGV[3] of the counter KEYS[2] (a hash from each bit to the count its setting made),
# leaving ``count`` as the count this bit made.
_COUNT_THE_BIT = """
local count = tonumber(redis.call('HGET', KEYS[2], ARGV[3]))
if not count then
    count = redis.call('HLEN', KEYS[2]) + 1
    redis.call('HSET', KEYS[2], ARGV[3], count)
    if ttl > 0 and count == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
"""

SCOPED_PUT_MANY = (
    _SCOPE
    + """
for index = 2, #KEYS do
    if ttl > 0 then
        redis.call('SET', KEYS[index], ARGV[index + 1], 'PX', ttl)
    else
        redis.call('SET', KEYS[index], ARGV[index + 1])
    end
end
"""
)

SCOPED_SET_BIT_AND_COUNT = _SCOPE + _COUNT_THE_BIT + "return count\n"

# KEYS[2]: the counter, then ARGV[6] keys to read, then (for a count-out) the record list and the
# counters. ARGV[3]: the bit, ARGV[4]: the count that completes the counter, ARGV[5]: the most bytes
# to read, ARGV[7]: the record ('': none), then the amounts. Returns {count, 1} when it applied the
# count-out; {count, 0, values...} when its count completes the counter and the values are small
# enough to copy (a retry's replay reads again); else {count, 0}.
SCOPED_COUNT_READ_OR_END = (
    _SCOPE
    + _COUNT_THE_BIT
    + """
local reads = tonumber(ARGV[6])
if count ~= tonumber(ARGV[4]) then
    if #KEYS == 2 + reads then return {count, 0} end
    local list = KEYS[3 + reads]
    if ARGV[7] ~= '' and redis.call('RPUSH', list, ARGV[7]) == 1 and ttl > 0 then
        redis.call('PEXPIRE', list, ttl)
    end
"""
    + _add("4 + reads", "4 - reads")
    + """
    return {count, 1}
end
local size = 0
for index = 3, 2 + reads do size = size + redis.call('STRLEN', KEYS[index]) end
if size > tonumber(ARGV[5]) then return {count, 0} end
local reply = {count, 0}
for index = 3, 2 + reads do reply[index] = redis.call('GET', KEYS[index]) end
return reply
"""
)

SCOPED_INCREMENT = (
    _SCOPE
    + """
local value = redis.call('INCRBY', KEYS[2], ARGV[3])
if ttl > 0 and value == tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ttl) end
return value
"""
)

SCOPED_INCREMENT_MANY = _SCOPE + _add("2", "1")

# KEYS[2]: the guard, KEYS[3]: the counter that must be positive, then the counters; ARGV[3]:
# whether there is a condition, then the amounts.
SCOPED_INCREMENT_ONCE = (
    _SCOPE
    + """
if ARGV[3] == '1' and tonumber(redis.call('GET', KEYS[3]) or '0') <= 0 then return 0 end
if not redis.call('SET', KEYS[2], 1, 'NX') then return 0 end
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
"""
    + _add("4", "0")
    + "return 1\n"
)

# KEYS[2]: the list, then the counters; ARGV[3]: the record, then the amounts.
SCOPED_APPEND_AND_INCREMENT = (
    _SCOPE
    + """
local length = redis.call('RPUSH', KEYS[2], ARGV[3])
if ttl > 0 and length == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
"""
    + _add("3", "1")
)


@functools.cache
def _sha(script: str) -> str:
    """The hash Redis knows a script by (EVALSHA)."""
    return hashlib.sha1(script.encode()).hexdigest()


# A scoped script to run: its text, its keys (after the alive mark) and its arguments (after the flags).
_Call = tuple[str, Sequence[str], Sequence[Any]]

# A job's view writes objects up to this many bytes (together) in a guarded script; bigger ones
# as plain SETs, which do not copy them, followed by a look at the alive mark.
_SCRIPTED_BYTES = 64 * 1024
_DELETE_BATCH = 10_000
_SHORTEST_BLOCK = 0.01  # seconds
REDIS_MAX_BULK = 512 * 1024 * 1024
_HIREDIS_PACKS_MOST = 64 * 1024  # bytes of one argument


class _CommandPacker:
    """Packs a command with hiredis when its arguments are small, else with redis-py's Python packer.

    hiredis copies every argument: a 2 MB SET packed by it runs at about 300 MB/s here, against
    2 GB/s for the Python packer, which sends large values without copying. For the small commands
    of every task (a counter script, a write of a few bytes) hiredis is the faster by far: about
    1.5 µs against 9 µs for a count-out script. hiredis parses the replies either way.
    """

    def __init__(self) -> None:
        self._python = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
        self._hiredis = HiredisRespSerializer()

    def pack(self, *args: Any) -> list[bytes | memoryview]:
        """The command as the buffers to send."""
        for arg in args:
            if not isinstance(arg, str | int | float) and (
                not isinstance(arg, bytes) or len(arg) > _HIREDIS_PACKS_MOST
            ):
                return self._python.pack(*args)  # big values, and types hiredis does not take
        return self._hiredis.pack(*args)


class RedisConnectionOptions(BackendOptions):
    """Connection options every Redis-based store shares.

    Attributes:
        socket_timeout: seconds before a stalled command fails (a dead server fails the job).
        connect_timeout: seconds to wait for a connection.
        max_object_bytes: larger task outputs fail their task with a clear error (Redis itself
            takes at most 512 MiB, its ``proto-max-bulk-len``).

    """

    socket_timeout: float = 60.0
    connect_timeout: float = 5.0
    max_object_bytes: int = Field(default=REDIS_MAX_BULK, ge=1, le=REDIS_MAX_BULK)


class RedisOptions(RedisConnectionOptions):
    """Options of the ``redis`` store: the connection options and the server's URL.

    Attributes:
        url: ``redis://host:port/db``, ``rediss://`` for TLS, or ``unix:///path/to/socket``.

    """

    url: str = "redis://127.0.0.1:6379/0"


translated = translate_errors(redis.RedisError, RedisClusterException)


class RedisStoreBase(StorageBackend):
    """What the Redis stores share, on one server or on a cluster: the commands on one key each.

    Subclasses connect (:meth:`_connect`), declare their capabilities (:meth:`_capabilities`) and
    write their batches their own way: one server runs a pipeline or a script over any keys, in
    order; on a cluster a script stays within one hash slot and a pipeline's commands to different
    nodes may land in any order. Every Redis store has the batched writes.
    """

    Options = RedisOptions

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.capabilities = self._capabilities()
        self._client = self._connect()
        self._set_bit_and_count = self._client.register_script(SET_BIT_AND_COUNT)

    @abstractmethod
    def _connect(self) -> Any:
        """The redis-py client."""

    @abstractmethod
    def _capabilities(self) -> StorageCapabilities:
        """What this store can do, given its options."""

    @property
    def url(self) -> str:
        """The server's URL."""
        return self.options.url

    def describe(self) -> str:
        """Name the store and its address."""
        return f"{self.name} store at {self.url}"

    @translated
    def check(self) -> None:
        """Ping the server."""
        self._client.ping()

    @translated
    def put(self, key: str, value: bytes) -> None:
        """SET the object."""
        self._client.set(key, value)

    @translated
    def get(self, key: str) -> bytes | None:
        """GET the object."""
        return self._client.get(key)

    @translated
    def delete_many(self, keys: Iterable[str]) -> None:
        """UNLINK the keys in batches (the server frees big values in the background)."""
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                self._client.unlink(*batch)
                batch.clear()
        if batch:
            self._client.unlink(*batch)

    @translated
    def set_bit_and_count(self, key: str, bit: int) -> int:
        """HGET, or HLEN then HSET, in one server-side script."""
        return int(self._set_bit_and_count(keys=[key], args=[bit]))

    @translated
    def count_bits(self, key: str) -> int:
        """HLEN."""
        return int(self._client.hlen(key))

    @translated
    def increment(self, key: str, amount: int) -> int:
        """INCRBY (GET for 0, which must not create the key)."""
        if amount == 0:
            return int(self._client.get(key) or 0)
        return int(self._client.incrby(key, amount))

    @translated
    def append(self, key: str, record: bytes) -> None:
        """RPUSH."""
        self._client.rpush(key, record)

    @translated
    def pop_all(self, key: str, timeout: float) -> list[bytes]:
        """BLPOP the first record, then take the rest without waiting."""
        records: list[bytes] = []
        if timeout < _SHORTEST_BLOCK:
            # The server truncates a BLPOP timeout to whole milliseconds, and 0 means forever: a
            # wait shorter than that must not block at all.
            rest = self._client.lpop(key, 100_000)
            return list(rest or [])
        first = self._client.blpop([key], timeout=timeout)
        if first is None:
            return []
        records.append(first[1])
        rest = self._client.lpop(key, 100_000)
        if rest:
            records.extend(rest)
        return records

    @translated
    def list_keys(self, prefix: str) -> list[str]:
        """SCAN for the prefix."""
        pattern = prefix.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?") + "*"
        return [k.decode() for k in self._client.scan_iter(match=pattern, count=1000)]

    @translated
    def sizes(self, keys: Sequence[str]) -> list[int | None]:
        """MEMORY USAGE of each key, in one pipeline."""
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return list(pipe.execute())

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    @abstractmethod
    def put_and_count(self, items: Mapping[str, bytes], counters: Sequence[tuple[str, int]]) -> list[int]:
        """See :meth:`BatchedWrites.put_and_count`."""

    def put_count_and_read(
        self,
        items: Mapping[str, bytes],
        counter: tuple[str, int],
        complete: int,
        reads: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """The count alone, in :meth:`put_and_count`'s round trip: it declines to read or count out.

        A job's view of one server (:class:`ScopedRedisStorage`) does both in the same script.
        """
        return Counted(self.put_and_count(items, [counter])[0], None, False)

    @abstractmethod
    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """See :meth:`BatchedWrites.append_and_increment`."""


class RedisStorage(RedisStoreBase):
    """A Redis server given by URL.

    The commands an executor sends for every task (reads, and a job's guarded writes and counts)
    go over :class:`~wukong.backends.storage.held_connections.HeldConnections`; the rest through
    redis-py's client. Both draw on one connection pool.
    """

    name = "redis"

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._held = HeldConnections(self._client.connection_pool)

    def _capabilities(self) -> StorageCapabilities:
        """One server runs a script on any keys: the conditional increment and fenced writes too."""
        return StorageCapabilities(
            max_object_bytes=self.options.max_object_bytes,
            conditional_increments=True,
            fenced_writes=True,
            expiring_keys=True,
            batched_writes=True,
        )

    def _connect(self) -> Any:
        """The redis-py client; connections open lazily, on the first command."""
        pool = redis.ConnectionPool.from_url(
            self.url,
            socket_timeout=self.options.socket_timeout,
            socket_connect_timeout=self.options.connect_timeout,
            command_packer=_CommandPacker(),
        )
        return redis.Redis(connection_pool=pool)

    @translated
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """MSET the objects in one command."""
        if items:
            self._client.mset(dict(items))

    @translated
    def get(self, key: str) -> bytes | None:
        """GET the object."""
        return self._one(("GET", key))

    @translated
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """MGET the objects in one command."""
        if not keys:
            return []
        return self._one(("MGET", *keys))

    def _one(self, command: Sequence[Any]) -> Any:
        """One command's reply, over a held connection; a refused command raises."""
        (reply,) = self._held.run([command])
        if isinstance(reply, Exception):
            raise reply
        return reply

    @translated
    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """INCRBY each, in order, in one script: one command costs less than a pipeline of several."""
        self._client.execute_command("EVAL", INCREMENT_MANY, len(amounts), *amounts, *amounts.values())

    @translated
    def increment_once(
        self, guard: str, amounts: Mapping[str, int], *, while_positive: str | None = None
    ) -> bool:
        """Check the condition, SET NX the guard, then INCRBY each counter, in one script."""
        condition = guard if while_positive is None else while_positive
        reply = self._client.execute_command(
            "EVAL",
            INCREMENT_ONCE,
            2 + len(amounts),
            guard,
            condition,
            *amounts,
            int(while_positive is not None),
            *amounts.values(),
        )
        return bool(reply)

    @translated
    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """RPUSH, then INCRBY each counter in order, in one script."""
        self._client.execute_command(
            "EVAL", APPEND_AND_INCREMENT, 1 + len(amounts), key, *amounts, record, *amounts.values()
        )

    @translated
    def put_and_count(self, items: Mapping[str, bytes], counters: Sequence[tuple[str, int]]) -> list[int]:
        """One pipeline: the writes, then the counter scripts; Redis runs them in this order."""
        pipe = self._client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(key, value)
        for key, bit in counters:
            # EVAL, not a Script object: in a pipeline redis-py checks that a script exists with an
            # extra round trip first. The server caches the compiled script by its hash anyway.
            pipe.eval(SET_BIT_AND_COUNT, 1, key, bit)
        replies = pipe.execute()
        return [int(count) for count in replies[len(items) :]]

    def close(self) -> None:
        """Close the held connections, then the client."""
        self._held.close()
        super().close()

    def scoped(self, scope: WriteScope) -> StorageBackend:
        """A view whose writes check ``scope.alive`` atomically and expire after ``scope.ttl_seconds``."""
        if scope.alive is None and scope.ttl_seconds is None:
            return self
        return ScopedRedisStorage(self, scope)


class ScopedRedisStorage(RedisStorage):
    """A job's view of a Redis store (see the module docstring); it shares the store's connections."""

    def __init__(self, store: RedisStorage, scope: WriteScope):  # no super().__init__: nothing to open
        self.__dict__.update(store.__dict__)
        self.store, self.scope = store, scope
        self._ttl_ms = 0 if scope.ttl_seconds is None else int(scope.ttl_seconds * 1000)
        # KEYS[1] and ARGV[1:3] of every scoped script.
        self._guard = scope.alive or "-"
        self._flags = (int(scope.alive is not None), self._ttl_ms)

    @property
    def url(self) -> str:
        """The store's URL."""
        return self.store.url

    def spec(self) -> tuple[str, dict[str, Any]]:
        """The store's own spec."""
        return self.store.spec()

    def _script(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a scoped script by its hash (its text, loaded once, need not travel every time)."""
        command = ("EVALSHA", _sha(script), 1 + len(keys), self._guard, *keys, *self._flags, *args)
        try:
            try:
                return self._one(command)
            except NoScriptError:  # a new or restarted server: load it, once
                self._client.script_load(script)
                return self._one(command)
        except ResponseError as error:
            raise self._ended_or(error) from error

    def _ended_or(self, error: BaseException) -> BaseException:
        if isinstance(error, ResponseError) and str(error).startswith(ENDED_REPLY):
            return self._ended()
        return error

    def _ended(self) -> JobEndedError:
        return JobEndedError(f"{self.describe()}: the job of {self.scope.alive} has ended")

    @translated
    def put(self, key: str, value: bytes) -> None:
        """As :meth:`put_many`."""
        self.put_many({key: value})

    @translated
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Small objects in one guarded script; big ones as ``SET``s, then a look at the alive mark.

        A script would copy a big object into its arguments; a ``SET`` does not. The look comes in
        the same pipeline, after the ``SET``s: a mark gone by then may have gone before them, so
        their writer removes them.
        """
        if not items:
            return
        if sum(map(len, items.values())) <= _SCRIPTED_BYTES:
            self._script(SCOPED_PUT_MANY, list(items), list(items.values()))
            return
        pipe = self._client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(key, value, px=self._ttl_ms or None)
        if self.scope.alive is None:  # the client's own writes (its schedule pages): nothing to check
            pipe.execute()
            return
        pipe.exists(self.scope.alive)
        if not pipe.execute()[-1]:
            self._client.unlink(*items)
            raise self._ended()

    @translated
    def put_and_count(self, items: Mapping[str, bytes], counters: Sequence[tuple[str, int]]) -> list[int]:
        """One pipeline: the ``SET``s, then the guarded counter scripts.

        The first script checks the alive mark after every ``SET`` has landed, and a mark once gone
        never comes back: if it was there, so it was for the ``SET``s, and the client's clean-up
        removes them; if not, their writer does.
        """
        if not counters:
            self.put_many(items)
            return []
        calls = [(SCOPED_SET_BIT_AND_COUNT, [key], [bit]) for key, bit in counters]
        return [int(count) for count in self._write_then_run(items, calls)]

    @translated
    def put_count_and_read(
        self,
        items: Mapping[str, bytes],
        counter: tuple[str, int],
        complete: int,
        reads: Sequence[str],
        count_out: CountOut | None = None,
    ) -> Counted:
        """As :meth:`put_and_count`, in one pipeline, with one script that reads or counts out too.

        It reads ``reads`` only when they hold at most 64 KiB together (a script copies what it reads).
        """
        key, bit = counter
        keys, args = [key, *reads], [bit, complete, _SCRIPTED_BYTES, len(reads)]
        if count_out is not None:
            keys += [count_out.records_key, *count_out.amounts]
            args += [count_out.records or b"", *count_out.amounts.values()]
        ((count, ended, *values),) = self._write_then_run(items, [(SCOPED_COUNT_READ_OR_END, keys, args)])
        read = values if reads and len(values) == len(reads) else None
        return Counted(int(count), read, bool(ended))

    def _write_then_run(self, items: Mapping[str, bytes], calls: Sequence[_Call]) -> list[Any]:
        """``SET`` the items, then run the guarded scripts, in one pipeline; return their replies."""
        replies = self._send(items, calls)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            # A new or restarted server ran none of them: load the scripts and send all again
            # (the SETs write the same values, a counter answers a bit again as it first did).
            for script in {script for script, _, _ in calls}:
                self._client.script_load(script)
            replies = self._send(items, calls)
        for reply in replies:
            if isinstance(reply, Exception):
                error = self._ended_or(reply)
                if isinstance(error, JobEndedError) and items:
                    self._client.unlink(*items)
                raise error
        return replies

    def _send(self, items: Mapping[str, bytes], calls: Sequence[_Call]) -> list[Any]:
        """Send the pipeline; return the scripts' replies (errors among them)."""
        expiry = ("PX", self._ttl_ms) if self._ttl_ms else ()
        commands: list[Sequence[Any]] = [("SET", key, value, *expiry) for key, value in items.items()]
        for script, keys, args in calls:
            guarded = (self._guard, *keys, *self._flags, *args)
            commands.append(("EVALSHA", _sha(script), 1 + len(keys), *guarded))
        return self._held.run(commands)[len(items) :]

    @translated
    def set_bit_and_count(self, key: str, bit: int) -> int:
        """The counter script, guarded."""
        return int(self._script(SCOPED_SET_BIT_AND_COUNT, [key], [bit]))

    @translated
    def increment(self, key: str, amount: int) -> int:
        """INCRBY in a guarded script (a read, ``amount == 0``, is a plain GET)."""
        if amount == 0:
            return int(self._client.get(key) or 0)
        return int(self._script(SCOPED_INCREMENT, [key], [amount]))

    @translated
    def increment_many(self, amounts: Mapping[str, int]) -> None:
        """INCRBY each, in order, in one guarded script."""
        self._script(SCOPED_INCREMENT_MANY, list(amounts), list(amounts.values()))

    @translated
    def increment_once(
        self, guard: str, amounts: Mapping[str, int], *, while_positive: str | None = None
    ) -> bool:
        """The conditional increment, guarded."""
        condition = guard if while_positive is None else while_positive
        flag = int(while_positive is not None)
        reply = self._script(SCOPED_INCREMENT_ONCE, [guard, condition, *amounts], [flag, *amounts.values()])
        return bool(reply)

    @translated
    def append(self, key: str, record: bytes) -> None:
        """RPUSH in a guarded script."""
        self._script(SCOPED_APPEND_AND_INCREMENT, [key], [record])

    @translated
    def append_and_increment(self, key: str, record: bytes, amounts: Mapping[str, int]) -> None:
        """RPUSH, then INCRBY each counter in order, in one guarded script."""
        self._script(SCOPED_APPEND_AND_INCREMENT, [key, *amounts], [record, *amounts.values()])

    def close(self) -> None:
        """Nothing: the store this view came from owns the connections."""
