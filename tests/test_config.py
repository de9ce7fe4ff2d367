"""Configuration: keyword arguments over environment over wukong.toml over pyproject.toml."""

from __future__ import annotations

import pytest

import wukong
from wukong.config import load_config


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("WUKONG_COMPUTE", "WUKONG_STORAGE", "WUKONG_TIMEOUT", "WUKONG_PAGE_TASKS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_defaults(in_tmp):
    config = load_config()
    assert (config.compute, config.storage, config.timeout) == ("local", "embedded", None)


def test_precedence(in_tmp, monkeypatch):
    (in_tmp / "pyproject.toml").write_text('[tool.wukong]\ntimeout = 1\npage_tasks = 7\nstorage = "ideal"\n')
    assert load_config().timeout == 1
    (in_tmp / "wukong.toml").write_text("timeout = 2\n")
    assert load_config().timeout == 2
    assert load_config().page_tasks == 7  # the file that does not set it lets the other through
    monkeypatch.setenv("WUKONG_TIMEOUT", "3")
    assert load_config().timeout == 3
    assert load_config(timeout=4).timeout == 4


def test_options_from_environment_as_json(in_tmp, monkeypatch):
    monkeypatch.setenv("WUKONG_COMPUTE_OPTIONS", '{"workers": 3, "mode": "threads"}')
    assert load_config().compute_options == {"workers": 3, "mode": "threads"}


def test_config_is_frozen(in_tmp):
    config = load_config()
    with pytest.raises(Exception, match="frozen"):
        config.timeout = 5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timeout": -1}, "timeout"),
        ({"colour": "blue"}, "colour"),
        (
            {"compute": "warp-drive"},
            "unknown compute backend 'warp-drive'; known compute backends: lambda, local",
        ),
        ({"storage": "floppy"}, "unknown storage backend 'floppy'.*embedded, ideal, memcached, redis"),
        ({"storage": "s3://bucket"}, "s3 store s3://bucket/ has no atomic counters.*data_storage"),
        (
            {"storage": "s3://bucket", "data_storage": "redis://127.0.0.1:1"},
            "no atomic counters.*use a store with atomic counters",
        ),
        ({"storage": "ftp://x"}, "no storage backend serves URLs of scheme 'ftp'"),
        (
            {"compute_options": {"workers": 0}},
            "invalid options for compute backend 'local'.*workers",
        ),
        ({"compute_options": {"wrokers": 2}}, "wrokers"),
        ({"storage": "ideal"}, "reachable only from the client's process"),
    ],
)
def test_bad_settings_are_clear_config_errors(in_tmp, settings, message):
    with pytest.raises(wukong.ConfigError, match=f"(?s){message}"):
        wukong.Client(**settings)
