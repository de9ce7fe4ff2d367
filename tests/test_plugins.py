"""Plugins: built-ins through the hooks, a third-party package through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wukong
from wukong.cli import main
from wukong.plugins import get_plugin_manager, reset_plugin_manager
from wukong.plugins.hookspecs import hookimpl

EXAMPLE = Path(__file__).parent / "example_plugin"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install the example plugin package into a private directory and put it on sys.path."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE)],
        check=True,
    )  # fmt: skip
    sys.path.insert(0, str(target))
    reset_plugin_manager()
    yield target
    sys.path.remove(str(target))
    for name in [m for m in sys.modules if m.startswith("wukong_serial")]:
        del sys.modules[name]
    reset_plugin_manager()


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
