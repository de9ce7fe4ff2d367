"""Plugins: built-ins through the hooks, a third-party package through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wukong
from tests.conftest import installed_plugin
from wukong.backends.storage.base import ObjectStorageBackend, StorageBackend, StorageCapabilities
from wukong.cli import main
from wukong.plugins import BackendEntry, get_plugin_manager, reset_plugin_manager
from wukong.plugins.hookspecs import hookimpl
from wukong.plugins.registry import clear_registries

EXAMPLE = Path(__file__).parent / "example_plugin"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """The example plugin package, pip-installed into a private directory on the path."""
    with installed_plugin(EXAMPLE, tmp_path_factory.mktemp("site")) as target:
        yield target
    for name in [m for m in sys.modules if m.startswith("wukong_serial")]:
        del sys.modules[name]


def test_builtins_register_through_the_hooks(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for name in ("local", "embedded", "redis", "ideal"):
        assert f"  {name} " in out
    assert "[from wukong.builtin]" in out


def test_third_party_backend_runs_a_dag_by_name(installed_example):
    with wukong.Client(compute="serial", storage="ideal") as client:
        graph = {"a": (abs, -1), "b": (abs, 2), "c": (sum, ["a", "b"]), "d": (pow, "c", 2)}
        assert client.get(graph, "d") == 9
        assert client.compute_backend.invocations_run == 2  # one per leaf; the rest became
        assert client.stores.list_keys("wukong/") == []


def test_plugin_listing_names_the_distribution(installed_example, capsys):
    main(["plugins"])
    out = capsys.readouterr().out
    assert "serial" in out and "wukong-serial 0.1.0" in out


def test_plugins_can_be_blocked_by_name(installed_example, monkeypatch):
    monkeypatch.setenv("WUKONG_DISABLE_PLUGINS", "serial")
    reset_plugin_manager()
    try:
        with pytest.raises(wukong.ConfigError, match=r"unknown compute backend 'serial'.*local"):
            wukong.Client(compute="serial", storage="ideal")
    finally:
        monkeypatch.delenv("WUKONG_DISABLE_PLUGINS")
        reset_plugin_manager()


def test_lifecycle_hooks_see_each_job(monkeypatch):
    seen = []

    class Recorder:
        @hookimpl
        def wukong_job_submitted(self, job):
            seen.append(("submitted", job.tasks))

        @hookimpl
        def wukong_job_finished(self, job, error):
            seen.append(("finished", job.tasks, error is None))

    manager = get_plugin_manager()
    recorder = Recorder()
    manager.register(recorder)
    try:
        with wukong.Client(compute_options={"mode": "threads"}, storage="ideal") as client:
            client.get({"a": (abs, -1), "b": (abs, "a")}, "b")
    finally:
        manager.unregister(recorder)
    assert seen == [("submitted", 2), ("finished", 2, True)]


def test_a_hook_implementation_without_spec_is_rejected():
    class Typo:
        @hookimpl
        def wukong_register_storage_backend(self):  # missing the final "s"
            return []

    manager = get_plugin_manager()
    manager.register(Typo())
    try:
        with pytest.raises(Exception, match="unknown hook"):
            manager.check_pending()
    finally:
        reset_plugin_manager()


def test_import_wukong_imports_no_backend_client():
    code = (
        "import sys, wukong; print(sorted(m for m in ('redis', 'boto3', 'pymemcache') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"


class _HalfStore(StorageBackend):
    """Declares atomic counters and speculation's guard, implements neither."""

    name = "half"
    capabilities = StorageCapabilities(atomic_counters=True, conditional_increments=True)

    def check(self) -> None: ...
    def put(self, key: str, value: bytes) -> None: ...
    def get_many(self, keys): ...
    def delete_many(self, keys) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def increment(self, key: str, amount: int) -> int: ...


class _NoListing(StorageBackend):
    """Leaves out an operation every store needs."""

    name = "no-listing"
    capabilities = StorageCapabilities(atomic_counters=False)

    def check(self) -> None: ...
    def put(self, key: str, value: bytes) -> None: ...
    def get_many(self, keys): ...
    def delete_many(self, keys) -> None: ...


class _HalfBatched(StorageBackend):
    """Coordinates, and declares the batched writes with only one of them."""

    name = "half-batched"
    capabilities = StorageCapabilities(batched_writes=True)

    def check(self) -> None: ...
    def put(self, key: str, value: bytes) -> None: ...
    def get_many(self, keys): ...
    def delete_many(self, keys) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def set_bit_and_count(self, key: str, bit: int) -> int: ...
    def count_bits(self, key: str) -> int: ...
    def increment(self, key: str, amount: int) -> int: ...
    def append(self, key: str, record: bytes) -> None: ...
    def pop_all(self, key: str, timeout: float) -> list[bytes]: ...
    def put_and_count(self, items, counters) -> list[int]: ...


class _CountingObjects(ObjectStorageBackend):
    """An object store only (no coordination methods at all) that declares atomic counters."""

    name = "counting-objects"
    capabilities = StorageCapabilities(atomic_counters=True)

    def check(self) -> None: ...
    def put(self, key: str, value: bytes) -> None: ...
    def get_many(self, keys): ...
    def delete_many(self, keys) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: ...


class _BrokenStores:
    @hookimpl
    def wukong_register_storage_backends(self):
        return [
            BackendEntry("half", _HalfStore),
            BackendEntry("no-listing", _NoListing),
            BackendEntry("half-batched", _HalfBatched),
            BackendEntry("counting-objects", _CountingObjects),
        ]


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (
            {"storage": "half"},
            "storage backend 'half' from plugin 'broken-stores' .*declares atomic_counters without "
            "set_bit_and_count, count_bits, append, pop_all; conditional_increments without increment_once",
        ),
        (
            {"storage": "redis://127.0.0.1:1/0", "data_storage": "no-listing"},
            "storage backend 'no-listing' from plugin 'broken-stores' .*does not implement list_keys",
        ),
        (
            {"storage": "half-batched"},
            "storage backend 'half-batched' from plugin 'broken-stores' .*declares batched_writes "
            "without put_count_and_read, append_and_increment",
        ),
        (
            {"storage": "counting-objects"},
            "storage backend 'counting-objects' from plugin 'broken-stores' .*declares atomic_counters "
            "without set_bit_and_count, count_bits, increment, append, pop_all",
        ),
    ],
    ids=[
        "capability-without-methods",
        "missing-operation",
        "fast-path-without-methods",
        "object-store-counting",
    ],
)
def test_a_store_missing_operations_fails_the_client_at_start(settings, said):
    manager = get_plugin_manager()
    manager.register(_BrokenStores(), name="broken-stores")
    clear_registries()  # built again, with the new plugin's stores
    try:
        with pytest.raises(wukong.ConfigError, match=said):
            wukong.Client(compute_options={"mode": "threads"}, **settings)
    finally:
        reset_plugin_manager()
