"""Memcached as a wukong store, through pymemcache.

Memcached has no bitmaps, no lists and an item size limit (1 MiB unless the server runs with ``-I``),
so everything is built from its own atomic primitives:

* **Objects** up to the item limit are one item. A larger object is split into chunks written first,
  then a small *manifest* item under the object's own key (told apart by its item flags), so a
  reader that finds the manifest finds every chunk. Chunk keys carry a random tag, so a rewrite never
  mixes chunks of two versions.
* **Counters** are an item listing the bits set, in order, updated by compare-and-swap (``gets``
  then ``cas``, or ``add`` for the first bit): setting a bit again returns the count of its first
  setting, and a lost race retries.
* **Plain counters** use ``incr``/``decr`` (``add`` creates them); like memcached's own, they never
  go below zero.
* **Record lists** are length-prefixed frames joined by ``append``; the client takes them all with
  ``gets`` + ``cas`` and polls (memcached has no blocking read).

A view scoped to a job (:meth:`MemcachedStorage.scoped`) gives every item it creates the scope's
lifetime (memcached's own expiry). Memcached cannot check a job's alive mark beside a write, so the
core checks after each write instead and undoes a write that came after the job's end
(:mod:`wukong.core.fence`).

A counter's compare-and-swap needs round trips of its own, so the store declares no
``batched_writes``: the core sends the executor protocol's write batches as their plain operations
(:mod:`wukong.core.batches`).

Memcached evicts items when it runs out of memory; run it with ``-M`` (refuse writes instead) and
enough ``-m`` for a job's objects, or a job fails with a clear "evicted" error.
"""

from __future__ import annotations

import copy
import secrets
import socket
import struct
import threading
import time
import urllib.parse
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError

from wukong.backends.options import BackendOptions
from wukong.backends.storage.base import StorageBackend, StorageCapabilities, WriteScope, translate_errors
from wukong.errors import StorageError

_PLAIN, _MANIFEST = 0, 1
_FRAME = struct.Struct("!I")
# Space left in an item for memcached's own header and the key.
_ITEM_OVERHEAD = 512
# Chunks sent per pipelined batch: bounds the memory of one batch at a few item sizes.
_CHUNK_BATCH = 8
_META_BATCH = 500
# memcached reads an expiry above 30 days as a point in time (seconds since the epoch).
_LONGEST_RELATIVE_EXPIRY = 30 * 24 * 3600


@dataclass(frozen=True)
class Manifest:
    """What an object split into chunks looks like: its size, its chunk count and the chunks' tag."""

    size: int
    chunks: int
    tag: str

    def chunk_keys(self, key: str) -> list[str]:
        """The keys of the chunks of object ``key``."""
        return [f"{key}#{self.tag}.{index}" for index in range(self.chunks)]

    def encode(self) -> bytes:
        """The manifest item's value."""
        return f"{self.size} {self.chunks} {self.tag}".encode()

    @classmethod
    def decode(cls, value: bytes) -> Manifest:
        """Read a value made by :meth:`encode`."""
        size, chunks, tag = value.decode().split()
        return cls(int(size), int(chunks), tag)


class _Serde:
    """Bytes pass through untouched; a manifest is marked by its item flags."""

    def serialize(self, key: bytes | str, value: Any) -> tuple[bytes, int]:
        if isinstance(value, Manifest):
            return value.encode(), _MANIFEST
        return value, _PLAIN

    def deserialize(self, key: bytes | str, value: bytes, flags: int) -> Any:
        if flags == _MANIFEST:
            return Manifest.decode(value)
        return value


class MemcachedOptions(BackendOptions):
    """Options of the ``memcached`` store.

    Attributes:
        url: ``memcached://host:port``.
        item_bytes: the server's item size limit (its ``-I`` option); larger objects are chunked.
        timeout: seconds before a stalled command fails.
        connect_timeout: seconds to wait for a connection.

    """

    url: str = "memcached://127.0.0.1:11211"
    item_bytes: int = Field(default=1024 * 1024, ge=4096)
    timeout: float = 60.0
    connect_timeout: float = 5.0


_translated = translate_errors(MemcacheError, OSError)


class MemcachedStorage(StorageBackend):
    """A memcached server given by URL."""

    name = "memcached"
    Options = MemcachedOptions
    capabilities = StorageCapabilities(expiring_keys=True, evicts=True)
    _ttl_seconds: int | None = None  # a scoped view's key lifetime
    _owns_connections = True  # a scoped view shares its store's

    def __init__(self, **options: Any):
        super().__init__(**options)
        address = urllib.parse.urlsplit(self.options.url)
        if address.scheme != "memcached" or not address.hostname:
            raise StorageError(f"not a memcached URL: {self.options.url!r} (memcached://host:port)")
        self._chunk_bytes = self.options.item_bytes - _ITEM_OVERHEAD
        self._address = (address.hostname, address.port or 11211)
        self._local = threading.local()
        self._connections: list[Client] = []
        self._connections_lock = threading.Lock()

    @property
    def _client(self) -> Client:
        """The calling thread's connection.

        One plain client per thread rather than pymemcache's PooledClient, whose pool costs about
        14 us a command here, a third of a small get.
        """
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = Client(
                self._address,
                serde=_Serde(),
                connect_timeout=self.options.connect_timeout,
                timeout=self.options.timeout,
                no_delay=True,
                default_noreply=False,
            )
            with self._connections_lock:
                self._connections.append(client)
        return client

    def describe(self) -> str:
        """Name the store and its address."""
        return f"{self.name} store at {self.options.url}"

    @_translated
    def check(self) -> None:
        """Ask the server for its version."""
        self._client.version()

    @_translated
    def put(self, key: str, value: bytes) -> None:
        """Store one object (chunked above the item limit)."""
        if len(value) > self._chunk_bytes:
            self._put_chunked(key, value)
        elif not self._client.set(key, value, expire=self._expire):
            raise StorageError(f"{self.describe()} refused to store {key!r} (out of memory with -M?)")

    @_translated
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Store small objects in one pipelined batch; chunk the big ones."""
        small = {key: value for key, value in items.items() if len(value) <= self._chunk_bytes}
        if small:
            self._set_all(small)
        for key, value in items.items():
            if len(value) > self._chunk_bytes:
                self._put_chunked(key, value)

    def _set_all(self, items: Mapping[str, Any]) -> None:
        refused = self._client.set_many(items, expire=self._expire)
        if refused:
            raise StorageError(
                f"{self.describe()} refused to store {len(refused)} item(s), e.g. {refused[0]!r} "
                "(out of memory with -M, or an item larger than the server's -I)"
            )

    def _put_chunked(self, key: str, value: bytes) -> None:
        previous = self._client.get(key)
        size, step = len(value), self._chunk_bytes
        manifest = Manifest(size, -(-size // step), secrets.token_hex(6))
        chunk_keys = manifest.chunk_keys(key)
        view = memoryview(value)
        for first in range(0, len(chunk_keys), _CHUNK_BATCH):
            indexes = range(first, min(first + _CHUNK_BATCH, len(chunk_keys)))
            self._set_all({chunk_keys[i]: bytes(view[i * step : (i + 1) * step]) for i in indexes})
        self._set_all({key: manifest})
        if isinstance(previous, Manifest):
            self._client.delete_many(previous.chunk_keys(key))

    @_translated
    def get(self, key: str) -> bytes | None:
        """Read one item, and its chunks if it is a manifest."""
        value = self._client.get(key)
        if isinstance(value, Manifest):
            return self._join(key, value, self._client.get_many(value.chunk_keys(key)))
        return value

    @_translated
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read the items in one batch, then the chunks of any chunked object in another."""
        if not keys:
            return []
        found = self._client.get_many(keys)
        values = [found.get(key) for key in keys]
        manifests = {key: value for key, value in found.items() if isinstance(value, Manifest)}
        if manifests:
            wanted = [chunk for key, manifest in manifests.items() for chunk in manifest.chunk_keys(key)]
            chunks = self._client.get_many(wanted)
            whole = {key: self._join(key, manifest, chunks) for key, manifest in manifests.items()}
            values = [whole.get(key, value) for key, value in zip(keys, values, strict=True)]
        return values

    def _join(self, key: str, manifest: Manifest, chunks: Mapping[str, bytes]) -> bytes:
        parts = [chunks.get(chunk) for chunk in manifest.chunk_keys(key)]
        if any(part is None for part in parts):
            current = self._client.get(key)
            if isinstance(current, Manifest) and current != manifest:  # rewritten meanwhile: read again
                return self.get_many([key])[0]
            raise StorageError(
                f"object {key!r} ({manifest.size:,} bytes in {manifest.chunks} chunks) lost a chunk in "
                f"{self.describe()}: memcached evicted it; run memcached with -M and more memory (-m)"
            )
        return b"".join(parts)  # type: ignore[arg-type]

    @_translated
    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete the keys, and the chunks of chunked objects among them."""
        keys = list(keys)
        for first in range(0, len(keys), _META_BATCH):
            batch = keys[first : first + _META_BATCH]
            chunked = self._chunked_among(batch)
            doomed = list(batch)
            if chunked:
                for key, manifest in self._client.get_many(chunked).items():
                    if isinstance(manifest, Manifest):
                        doomed.extend(manifest.chunk_keys(key))
            self._client.delete_many(doomed)

    def _chunked_among(self, keys: Sequence[str]) -> list[str]:
        """The keys among ``keys`` that hold a manifest, from their flags alone (no values read).

        One pipelined batch of quiet meta gets: memcached answers only for items that exist.
        """
        command = b"".join(f"mg {key} k f q\r\n".encode() for key in keys) + b"mn\r\n"
        reply = self._exchange(command, b"MN\r\n")
        chunked = []
        for line in reply.split(b"\r\n"):
            fields = dict((word[:1], word[1:]) for word in line.split()[1:])
            if fields.get(b"f") == str(_MANIFEST).encode():
                chunked.append(fields[b"k"].decode())
        return chunked

    def _exchange(self, command: bytes, terminator: bytes) -> bytes:
        """Send ``command`` on a connection of its own and read the reply up to ``terminator``.

        For replies of many lines (meta gets, the key dump): pymemcache's ``raw_command`` keeps only
        the last network read of such a reply.
        """
        with socket.create_connection(self._address, timeout=self.options.timeout) as connection:
            connection.sendall(command)
            reply = bytearray()
            while not reply.endswith(terminator):
                data = connection.recv(1 << 16)
                if not data:
                    raise StorageError(f"{self.describe()} closed the connection mid-reply")
                reply += data
                if reply.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR", b"BUSY")):
                    raise StorageError(f"{self.describe()} answered {bytes(reply).splitlines()[0]!r}")
        return bytes(reply[: -len(terminator)])

    @_translated
    def set_bit_and_count(self, key: str, bit: int) -> int:
        """Add the bit to the counter item by compare-and-swap; return its count when first set.

        The item lists the bits in the order they were set (4 bytes each), so a bit's position is
        the count its first setting made.
        """
        client = self._client
        while True:
            value, token = client.gets(key)
            if value is None:
                if client.add(key, _bit_entry(bit), expire=self._expire):
                    return 1
                continue  # another executor created it first
            bits = array("I", value)
            if bit in bits:
                return bits.index(bit) + 1
            if client.cas(key, value + _bit_entry(bit), token, expire=self._expire):
                return len(bits) + 1

    @_translated
    def count_bits(self, key: str) -> int:
        """Read the counter item: how many bits it lists."""
        value = self._client.get(key)
        return 0 if value is None else len(value) // _BIT_ENTRY_BYTES

    @_translated
    def increment(self, key: str, amount: int) -> int:
        """``incr`` or ``decr`` (never below zero); ``add`` creates the counter."""
        client = self._client
        while True:
            value = client.incr(key, amount) if amount >= 0 else client.decr(key, -amount)
            if value is not None:
                return int(value)
            if amount <= 0:
                return 0  # reading or lowering a counter that does not exist: zero, nothing created
            if client.add(key, str(amount).encode(), expire=self._expire):
                return amount

    @_translated
    def append(self, key: str, record: bytes) -> None:
        """Append one length-prefixed frame (``add`` starts the list)."""
        frame = _FRAME.pack(len(record)) + record
        client = self._client
        while not client.append(key, frame):
            if client.add(key, frame, expire=self._expire):
                return

    @_translated
    def pop_all(self, key: str, timeout: float) -> list[bytes]:
        """Poll with backoff until the list has frames, then take them all by compare-and-swap."""
        deadline = time.monotonic() + timeout
        pause = 0.0005
        client = self._client
        while True:
            value, token = client.gets(key)
            if value:
                if client.cas(key, b"", token, expire=self._expire):
                    return _frames(value)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.02)

    @property
    def _expire(self) -> int:
        """The ``expire`` argument of the items this store (or view) creates; 0: never."""
        ttl = self._ttl_seconds
        if not ttl:
            return 0
        return ttl if ttl <= _LONGEST_RELATIVE_EXPIRY else int(time.time()) + ttl

    def scoped(self, scope: WriteScope) -> StorageBackend:
        """A view, sharing this store's connections, whose items expire after ``scope.ttl_seconds``."""
        if scope.ttl_seconds is None:
            return self
        view = copy.copy(self)
        view._ttl_seconds = scope.ttl_seconds
        view._owns_connections = False
        return view

    @_translated
    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, from the server's LRU crawler (``lru_crawler metadump all``)."""
        return sorted(key for key in self._dump() if key.startswith(prefix))

    @_translated
    def sizes(self, keys: Sequence[str]) -> list[int | None]:
        """The items' sizes, from the LRU crawler's dump (chunks of a chunked object not counted)."""
        dump = self._dump()
        return [dump.get(key) for key in keys]

    def _dump(self) -> dict[str, int]:
        """Every item's key and size (``lru_crawler metadump all``)."""
        dump = self._exchange(b"lru_crawler metadump all\r\n", b"END\r\n")
        items = {}
        for line in dump.split(b"\n"):
            if line.startswith(b"key="):
                fields = dict(word.split(b"=", 1) for word in line.split() if b"=" in word)
                items[urllib.parse.unquote(fields[b"key"].decode())] = int(fields.get(b"size", b"0"))
        return items

    def close(self) -> None:
        """Close every thread's connection (a scoped view leaves them to its store)."""
        if not self._owns_connections:
            return
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for client in connections:
            client.close()


_BIT_ENTRY_BYTES = array("I").itemsize


def _bit_entry(bit: int) -> bytes:
    return array("I", [bit]).tobytes()


def _frames(value: bytes) -> list[bytes]:
    records, offset = [], 0
    while offset < len(value):
        (size,) = _FRAME.unpack_from(value, offset)
        offset += _FRAME.size
        records.append(value[offset : offset + size])
        offset += size
    return records
