"""A wukong data store on any fsspec filesystem: local disk, memory, and the clouds fsspec reaches.

It keeps task outputs only (no atomic counters), so a job pairs it with a metadata store::

    wukong.Client(storage="redis://127.0.0.1:6379/0", data_storage="fsspec",
                  data_storage_options={"url": "file:///scratch/wukong"})

Each key is one file directly under ``url``, its name the key percent-encoded: no directories to
create or leave behind, and no key can be both a file and a directory. A write goes to a temporary
name first and is renamed into place on a local disk, so a reader never sees half an object (object
stores write whole objects anyway). The plugin registers through the ``wukong`` entry point in its
``pyproject.toml``, exactly as a package outside this repository would.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import fsspec
from pydantic import Field

import wukong
from wukong.backends.options import BackendOptions
from wukong.backends.storage import ObjectStorageBackend, StorageCapabilities
from wukong.backends.storage.base import translate_errors
from wukong.plugins import BackendEntry

_translated = translate_errors(OSError, ValueError)


class FsspecOptions(BackendOptions):
    """Options of the ``fsspec`` store.

    Attributes:
        url: the directory that holds the objects, as an fsspec URL (``file:///path``,
            ``memory://name``, ``gcs://bucket/path``, ...).
        storage_options: keyword arguments for the filesystem (credentials, endpoints).

    """

    url: str
    storage_options: dict[str, Any] = Field(default_factory=dict)


class FsspecStorage(ObjectStorageBackend):
    """Objects as files under one directory of an fsspec filesystem (an object store only)."""

    name = "fsspec"
    Options = FsspecOptions
    capabilities = StorageCapabilities(atomic_counters=False)

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._fs, root = fsspec.core.url_to_fs(self.options.url, **self.options.storage_options)
        self._root = root.rstrip("/")
        self._local = "file" in self._fs.protocol
        # An in-memory filesystem lives in one process: executors must run as threads beside it.
        shared = "memory" not in self._fs.protocol
        self.capabilities = StorageCapabilities(atomic_counters=False, shared_across_processes=shared)
        self._make_root()

    @_translated
    def _make_root(self) -> None:
        self._fs.makedirs(self._root, exist_ok=True)

    def describe(self) -> str:
        """Name the store and its URL."""
        return f"{self.name} store {self.options.url}"

    def _path(self, key: str) -> str:
        return f"{self._root}/{quote(key, safe='')}"

    @_translated
    def check(self) -> None:
        """The directory must be there (and reachable)."""
        if not self._fs.isdir(self._root):
            raise FileNotFoundError(f"{self._root} is not a directory")

    @_translated
    def put(self, key: str, value: bytes) -> None:
        """Write one file (locally: a temporary name, then a rename)."""
        path = self._path(key)
        if not self._local:
            self._fs.pipe_file(path, value)
            return
        partial = f"{self._root}/.{uuid.uuid4().hex}.partial"
        self._fs.pipe_file(partial, value)
        os.replace(partial, path)

    @_translated
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Write the files; a remote filesystem may send them concurrently."""
        if self._local:
            for key, value in items.items():
                self.put(key, value)
        elif items:
            self._fs.pipe({self._path(key): value for key, value in items.items()})

    @_translated
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read the files in one call; a missing one gives ``None``."""
        if not keys:
            return []
        paths = [self._path(key) for key in keys]
        found = self._fs.cat(paths, on_error="omit")
        # fsspec may name a file with or without its protocol: match by what follows the root.
        by_name = {path.rsplit("/", 1)[-1]: value for path, value in found.items()}
        return [by_name.get(path.rsplit("/", 1)[-1]) for path in paths]

    @_translated
    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove the files; missing ones are ignored."""
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm_file(self._path(key))

    @_translated
    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``: the directory's files, decoded (temporary files skipped)."""
        names = (path.rsplit("/", 1)[-1] for path in self._fs.ls(self._root, detail=False))
        keys = (unquote(name) for name in names if not name.startswith("."))
        return [key for key in keys if key.startswith(prefix)]


@wukong.hookimpl
def wukong_register_storage_backends() -> list[BackendEntry]:
    """Register the ``fsspec`` store."""
    return [
        BackendEntry(
            name="fsspec",
            target="wukong_fsspec:FsspecStorage",
            description="a data store on any fsspec filesystem (an example third-party plugin)",
            install_hint="pip install wukong-fsspec",
        )
    ]
