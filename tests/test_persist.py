"""Persist, the serverless way: outputs stay in the store, later computes read them, futures own them."""

from __future__ import annotations

import gc
import pickle
import time

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import redis

import wukong
from wukong import gc as wukong_gc
from wukong.core.futures import Future, Holdings

THREADS = {"storage": "ideal", "compute_options": {"mode": "threads", "workers": 2}, "set_as_default": False}


def source_array():
    return da.random.default_rng(0).random((600, 600), chunks=200)


def keys_run(client) -> set[str]:
    """The key names of the tasks the last job ran."""
    names = (record.key for record in client.last_job.metrics.tasks)
    return {name.split("'")[1] if name.startswith("(") else name for name in names}


def stored_keys(redis_url: str) -> list[bytes]:
    """wukong's keys in the Redis server, read around the client."""
    return redis.Redis.from_url(redis_url).keys("wukong/*")


def futures_of(collection) -> list[Future]:
    return [value for value in dict(collection.__dask_graph__()).values() if isinstance(value, Future)]


def release_all(*collections) -> None:
    """Drop the futures of ``collections`` (the caller also drops its own references)."""
    for collection in collections:
        for future in futures_of(collection):
            future.release()
    gc.collect()


def test_an_array_persisted_then_reduced_three_ways_reads_its_chunks(client):
    x = source_array()
    if client.stores.data.capabilities.evicts:
        with pytest.raises(wukong.ConfigError, match="may evict a value"):
            (x + 1).persist(scheduler=client)
        return
    y = (x + 1).persist(scheduler=client)
    assert y.chunks == x.chunks and len(client.futures) == 9
    source, added = x.name.split("-")[0], y.name
    for reduce in (lambda a: a.sum(), lambda a: a.mean(axis=0), lambda a: a.max(axis=1)):
        got = reduce(y).compute(scheduler=client)
        np.testing.assert_allclose(got, reduce(x + 1).compute(scheduler="sync"))
        ran = keys_run(client)
        assert not any(name.startswith(source) for name in ran)  # the random chunks: not made again
        assert added in ran  # the persisted chunks, read
        assert client.last_job.metrics.totals.data_bytes_read >= y.nbytes  # every chunk, from the store
    (first,) = [f for f in futures_of(y) if f.key == (added, 0, 0)]
    np.testing.assert_array_equal(first.result(), (x + 1).blocks[0, 0].compute(scheduler="sync"))
    release_all(y)
    del y, first
    gc.collect()
    assert client.futures == {}


def test_a_dataframe_persisted_then_grouped_two_ways(redis_url):
    pdf = pd.DataFrame({"k": np.arange(6000) % 7, "v": np.arange(6000.0), "w": np.arange(6000) % 3})
    df = dd.from_pandas(pdf, npartitions=6)
    filtered = df[df.v > 100]
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        kept = filtered.persist(scheduler=client)
        by_k = kept.groupby("k").v.sum().compute(scheduler=client)
        by_w = kept.groupby("w").v.mean().compute(scheduler=client)
        assert not any(name.startswith("from_pandas") for name in keys_run(client))
        pd.testing.assert_series_equal(by_k, filtered.groupby("k").v.sum().compute(scheduler="sync"))
        pd.testing.assert_series_equal(by_w, filtered.groupby("w").v.mean().compute(scheduler="sync"))
        assert stored_keys(redis_url)
    assert stored_keys(redis_url) == []  # the client closed: every persisted partition went with it


def test_every_way_dask_persists_reaches_the_client(redis_url):
    x = source_array() * 2
    with wukong.Client(storage=redis_url) as client:  # the default client, too
        (a,) = dask.persist(x, scheduler=client)
        b = x.persist()
        c = x.persist(scheduler="wukong")
        for persisted in (a, b, c):
            assert futures_of(persisted), "computed into the client's memory instead of the store"
            np.testing.assert_allclose(persisted.sum().compute(), x.sum().compute(scheduler="sync"))
        assert len(client.futures) == 9  # one key each: the newest persist of a key is read
        jobs = wukong_gc.find_jobs(client.stores)
        assert [job.state(time.time()) for job in jobs] == ["running"] * 3  # held, so not for gc
        release_all(a, b, c)
        del a, b, c
        gc.collect()
        assert client.stores.list_keys("wukong/") == []


def test_persisting_a_key_again_keeps_each_value_while_its_futures_live(redis_url):
    x = source_array() + 1
    want = x.sum().compute(scheduler="sync")
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        older = x.persist(scheduler=client)
        newer = x.persist(scheduler=client)  # the same keys, a second stored value each
        release_all(newer)
        del newer
        assert len(client.futures) == 9  # the older values stand in for the keys again
        assert older.sum().compute(scheduler=client) == pytest.approx(want)
        release_all(older)
        del older
        assert client.futures == {} and stored_keys(redis_url) == []


def test_a_live_clients_held_values_stay_running_for_gc(redis_url, monkeypatch):
    import wukong.core.client as client_module

    monkeypatch.setattr(client_module, "HEARTBEAT_SECONDS", 0.2)
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        y = source_array().persist(scheduler=client)
        (job,) = wukong_gc.find_jobs(client.stores)
        assert client.stores.metadata.get(f"wukong/{job.job}/alive") is None  # ended: no executor writes
        time.sleep(1.5)
        (job,) = wukong_gc.find_jobs(client.stores)
        assert job.state(time.time(), stale_after=1.0) == "running"  # the heartbeat kept it fresh
        release_all(y)
        del y
        assert wukong_gc.find_jobs(client.stores) == []


def test_futures_garbage_collected_take_their_keys_with_them(redis_url):
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        y = source_array().persist(scheduler=client)
        assert len(client.stores.list_keys("wukong/")) == 9 + 1  # the chunks and the job's alive mark
        del y
        gc.collect()
        assert client.futures == {} and client.stores.list_keys("wukong/") == []
        kept = source_array().persist(scheduler=client)
    assert futures_of(kept)[0].released  # closing the client released it
    assert stored_keys(redis_url) == []


def test_a_released_future_is_a_clear_error_never_a_recompute(redis_url):
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        y = source_array().persist(scheduler=client)
        future = futures_of(y)[0]
        future.release()
        with pytest.raises(wukong.MissingKeyError, match=r"future .* was released"):
            y.sum().compute(scheduler=client)
        with pytest.raises(wukong.MissingKeyError, match="was released"):
            future.result()
        release_all(y)


def test_a_future_of_another_client_is_refused(redis_url):
    with (
        wukong.Client(storage=redis_url, set_as_default=False) as first,
        wukong.Client(storage=redis_url, set_as_default=False) as second,
    ):
        y = source_array().persist(scheduler=first)
        with pytest.raises(wukong.MissingKeyError, match="belongs to another wukong client"):
            y.sum().compute(scheduler=second)
        release_all(y)


def test_a_value_removed_behind_the_clients_back_fails_the_job_naming_it(redis_url):
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        y = source_array().persist(scheduler=client)
        (job,) = wukong_gc.find_jobs(client.stores)
        wukong_gc.remove(client.stores, job.job)  # as `wukong gc <job>` would, or an expiry
        with pytest.raises(wukong.MissingKeyError, match=r"persisted value .* is gone"):
            y.sum().compute(scheduler=client)
        client.settle()
        release_all(y)


def test_a_future_cannot_travel_by_pickle():
    with wukong.Client(**THREADS) as client:
        y = source_array().persist(scheduler=client)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(futures_of(y)[0])
        release_all(y)


def test_holdings_remove_a_value_once_no_future_stands_for_it():
    removed: list[tuple[list[str], list[str]]] = []
    holdings = Holdings(lambda marks, stored: removed.append((marks, stored)), read=lambda key: key)
    (first,) = holdings.hold("j1", "j1/held", 0.0, {"k": ("j1/o/0", 10)})
    (second,) = holdings.hold("j2", "j2/held", 0.0, {"k": ("j2/o/0", 10)})
    del second
    gc.collect()
    assert removed == []  # collected: only queued, nothing touches the store inside the collector
    assert holdings.listing() == {"k": 10}  # settled: the older value stands for the key again
    assert removed == [(["j2/held"], ["j2/o/0"])]
    first.release()
    assert removed[-1] == (["j1/held"], ["j1/o/0"]) and holdings.listing() == {}
    with pytest.raises(wukong.MissingKeyError, match="was released"):
        holdings.explain(["k"])


def test_a_client_that_closed_holds_nothing_more():
    holdings = Holdings(lambda marks, stored: None, read=lambda key: key)
    holdings.close()
    with pytest.raises(wukong.WukongError, match="nothing is held"):
        holdings.hold("j", "j/held", 0.0, {"k": ("j/o/0", 1)})
