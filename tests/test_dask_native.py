"""wukong as a Dask user reaches for a scheduler: by object, by name, as the default, with callbacks."""

from __future__ import annotations

import io
import multiprocessing
import operator
import time

import dask
import dask.array as da
import dask.bag as db
import pytest
from dask.callbacks import Callback
from dask.diagnostics import ProgressBar

import wukong

THREADS = {"storage": "ideal", "compute_options": {"mode": "threads", "workers": 2}}


def array_sum():
    return (da.arange(4000, chunks=500) * 2).sum()


def scheduler_now():
    return dask.config.get("scheduler", None)


def slow_add(a, b):
    time.sleep(1.3)  # longer than the progress bars' one second of delay
    return a + b


def test_a_client_object_is_a_scheduler(redis_url):
    x = array_sum()
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        assert x.compute(scheduler=client) == x.compute(scheduler="sync")
        assert client.last_job is not None and client.last_job.tasks > 1
        (value,) = dask.compute(x, scheduler=client)
        assert value == x.compute(scheduler="sync")


def test_a_default_client_runs_plain_computes_until_it_closes():
    x = array_sum()
    before = scheduler_now()
    with wukong.Client(**THREADS) as outer:
        assert scheduler_now() is outer
        assert x.compute() == x.compute(scheduler="sync")
        ran = outer.last_job
        assert ran is not None
        with wukong.Client(**THREADS) as inner:  # the newest client is the default
            assert dask.compute(x)[0] == x.compute(scheduler="sync")
            assert inner.last_job is not None and outer.last_job is ran
            assert x.compute(scheduler="wukong") == x.compute(scheduler="sync")  # by name, too
        assert scheduler_now() is outer  # the one set before takes over again
        x.compute()
        assert outer.last_job is not ran
    assert scheduler_now() is before


def test_closing_clients_out_of_order_never_brings_a_closed_one_back():
    first, second = wukong.Client(**THREADS), wukong.Client(**THREADS)
    first.close()
    assert scheduler_now() is second
    second.close()
    assert scheduler_now() is None


def test_a_client_not_set_as_default_leaves_dasks_settings_alone():
    with wukong.Client(**THREADS, set_as_default=False):
        assert scheduler_now() is None
        assert dask.config.get("dataframe.shuffle.method", None) is None


def test_a_client_whose_executors_share_no_files_makes_dask_shuffle_by_tasks():
    pairs = db.from_sequence(range(40), npartitions=4).map(lambda i: (i % 3, i))
    with wukong.Client(storage="embedded", compute_options={"share_nothing": True, "workers": 2}):
        assert dask.config.get("dataframe.shuffle.method") == "tasks"
        grouped = pairs.groupby(operator.itemgetter(0))  # built after the client: tasks, not disk
        got = sorted((k, sorted(v)) for k, v in grouped.compute())
    assert dask.config.get("dataframe.shuffle.method", None) is None
    want = sorted((k, sorted(v)) for k, v in grouped.compute(scheduler="sync"))
    assert got == want


def _scheduler_in_child(answer):
    answer.put(repr(dask.config.get("scheduler", None)))


def test_a_forked_child_does_not_inherit_the_default_client():
    with wukong.Client(**THREADS):
        context = multiprocessing.get_context("fork")
        answer = context.Queue()
        child = context.Process(target=_scheduler_in_child, args=(answer,))
        child.start()
        child.join(30)
        assert answer.get(timeout=5) == "None"


def test_the_scheduler_name_works_without_a_client():
    from wukong.core import client as client_module

    x = array_sum()
    want = x.compute(scheduler="sync")
    try:
        with dask.config.set(scheduler="wukong"):
            assert x.compute() == want
        assert client_module._default_client.last_job.tasks > 1  # the process's own client ran it
    finally:
        wukong.close_default_client()


class Recorder(Callback):
    """Every call Dask's callbacks get, in order."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _start(self, dsk):
        self.calls.append(("start", len(dsk)))

    def _start_state(self, dsk, state):
        self.calls.append(("start_state", len(state["waiting"])))

    def _pretask(self, key, dsk, state):
        assert key in dsk and key in state["running"]
        self.calls.append(("pretask", key))

    def _posttask(self, key, result, dsk, state, worker_id):
        assert key in state["finished"] and isinstance(worker_id, int)
        self.calls.append(("posttask", key))

    def _finish(self, dsk, state, errored):
        self.calls.append(("finish", errored))


def test_dasks_callbacks_hear_of_every_task_and_the_jobs_bounds(redis_url):
    x = array_sum()
    want = x.compute(scheduler="sync")
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        with Recorder() as recorder:
            assert x.compute(scheduler=client) == want
        tasks = client.last_job.tasks
        calls = recorder.calls
        assert calls[0] == ("start", tasks) and calls[1] == ("start_state", tasks)
        assert calls[-1] == ("finish", False)
        posttasks = [key for name, key in calls if name == "posttask"]
        assert len(posttasks) == len(set(posttasks)) == tasks  # each task once
        assert [name for name, _ in calls[2:-1]] == ["pretask", "posttask"] * tasks
        assert Callback.active == set()  # given back after the compute

        # Given to one compute only, as ``callbacks=`` (Dask passes it to the scheduler).
        given = Recorder()
        x.compute(scheduler=client, callbacks=[given])
        assert given.calls[-1] == ("finish", False) and len(given.calls) == 2 * tasks + 3


def test_a_failed_job_tells_its_callbacks_it_errored(redis_url):
    graph = {"a": (operator.truediv, 1, 0), "b": (operator.add, "a", 1)}
    with wukong.Client(storage=redis_url, set_as_default=False) as client:
        with Recorder() as recorder, pytest.raises(ZeroDivisionError):
            client.get(graph, "b")
        client.settle()
    assert recorder.calls[0] == ("start", 2) and recorder.calls[-1] == ("finish", True)


def test_dasks_progress_bar_shows_the_job_and_wukongs_stays_hidden(capsys):
    graph = {"a": 1, "b": (slow_add, "a", 1), "c": (slow_add, "b", 1)}
    shown = io.StringIO()
    want = dask.get(graph, "c")
    with wukong.Client(**THREADS, monitoring={"progress": True}) as client:
        with ProgressBar(out=shown):
            assert client.get(graph, "c") == want
        assert "100% Completed" in shown.getvalue()
        assert f"job {client.last_job.job}" not in capsys.readouterr().err
        client.get(graph, "c")  # without Dask's bar, wukong's own shows (on standard error)
        assert f"job {client.last_job.job}" in capsys.readouterr().err
