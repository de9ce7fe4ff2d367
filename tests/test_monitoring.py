"""What a job shows and records: task records, their summary, executor logs, progress, JSON."""

from __future__ import annotations

import logging
import operator
import os
import time
from concurrent.futures import ThreadPoolExecutor

import dask
import pytest

import wukong
from wukong.errors import TaskError
from wukong.monitoring.report import JobReport
from wukong.monitoring.timeline import PHASES


def _fan_out_fan_in(width: int = 6) -> tuple[dict, str]:
    """A source read by ``width`` tasks, each read by two of ``width`` joins, summed at the end."""
    graph: dict = {"source": (operator.add, 1, 2)}
    for i in range(width):
        graph[("spread", i)] = (operator.mul, "source", i + 1)
    for i in range(width):
        graph[("join", i)] = (operator.add, ("spread", i), ("spread", (i + 1) % width))
    graph["total"] = (sum, [("join", i) for i in range(width)])
    return graph, "total"


def test_every_task_has_one_record_that_adds_up(client):
    graph, root = _fan_out_fan_in()
    assert client.get(graph, root) == dask.get(graph, root)
    report = client.last_job
    metrics, totals = report.metrics, report.metrics.totals
    records = metrics.tasks
    assert sorted(record.key for record in records) == sorted(str(key) for key in graph)
    for record in records:
        assert record.started <= record.read_done <= record.computed <= record.written <= record.ended
        assert all(record.seconds(phase) >= 0 for phase in PHASES)
    summary = metrics.summary
    assert summary.tasks == report.tasks == totals.tasks_run == len(graph)
    assert summary.executors == totals.executors
    # Every executor but the client's leaves was invoked by a task.
    assert summary.invocations == totals.executors - report.leaves
    assert summary.bytes_written == totals.data_bytes_written
    assert summary.bytes_read == totals.data_bytes_read
    # The critical path is a chain of the graph from a source to the root.
    path = metrics.critical_path
    assert path[0] == "source" and path[-1] == root and len(path) == 4
    assert 0 < metrics.critical_path_seconds <= summary.span_seconds + 1e-6


def test_records_and_metrics_of_long_chains_that_meet_add_up(client):
    # Executors of 100 tasks end with a count that may complete the join: their count-out goes
    # apart from it, while the short ones' travels with it. Both must arrive whole.
    graph: dict = {("a", 0): (operator.add, 0, 1), ("b", 0): (operator.add, 0, 2), "c": (abs, -3)}
    for i in range(1, 100):
        graph[("a", i)] = (operator.add, ("a", i - 1), 1)
        graph[("b", i)] = (operator.add, ("b", i - 1), 2)
    graph["join"] = (sum, [("a", 99), ("b", 99), "c"])
    assert client.get(graph, "join") == dask.get(graph, "join")
    report = client.last_job
    totals = report.metrics.totals
    assert totals.tasks_run == report.metrics.summary.tasks == len(graph)
    assert sorted(record.key for record in report.metrics.tasks) == sorted(str(key) for key in graph)
    assert totals.executors == report.leaves == 3


def test_a_failed_tasks_error_carries_its_executors_log(client):
    def fail_loudly(value):
        logging.getLogger("user.tasks").warning("about to give up on %s", value)
        raise ValueError("no good")

    graph = {"a": (operator.add, 1, 2), "b": (fail_loudly, "a")}
    with pytest.raises(ValueError, match="no good") as caught:
        client.get(graph, "b")
    notes = "\n".join(caught.value.__notes__)
    assert "about to give up on 3" in notes
    assert "WARNING user.tasks" in notes


@pytest.fixture(scope="module")
def processes():
    with wukong.Client(timeout=120) as client:
        yield client
        client.settle()
        assert client.stores.list_keys("wukong/") == []


def test_worker_processes_keep_info_lines_for_the_error(processes):
    class Unpicklable(Exception):
        def __reduce__(self):
            raise TypeError("cannot travel")

    def fail(value):
        logging.getLogger("user.tasks").info("step one done with %s", value)
        raise Unpicklable("broken")

    with pytest.raises(TaskError) as caught:
        processes.get({"a": 1, "b": (fail, "a")}, "b")
    assert "INFO user.tasks" in caught.value.logs
    assert "step one done with 1" in caught.value.logs


def test_records_and_logs_can_be_turned_off():
    with wukong.Client(monitoring={"task_records": False, "log_lines": 0}, timeout=120) as client:
        graph, root = _fan_out_fan_in()
        assert client.get(graph, root) == dask.get(graph, root)
        metrics = client.last_job.metrics
        assert metrics.tasks == [] and metrics.critical_path == []
        assert metrics.totals.tasks_run == len(graph)  # the counters stay: progress needs them
        with pytest.raises(ZeroDivisionError) as caught:
            client.get({"x": (operator.truediv, 1, 0)}, "x")
        assert not any("log lines" in note for note in caught.value.__notes__)
        client.settle()
        assert client.stores.list_keys("wukong/") == []


def test_report_round_trips_through_json(processes, tmp_path):
    graph, root = _fan_out_fan_in()
    processes.get(graph, root)
    path = tmp_path / "job.json"
    processes.last_job.save(path)
    loaded = JobReport.load(path)
    assert loaded == processes.last_job
    assert loaded.metrics.summary == processes.last_job.metrics.summary
    with pytest.raises(ValueError, match="not a wukong job report"):
        JobReport.from_dict({"format": "something else"})


def _sleepy(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def test_progress_bar_shows_for_a_long_job_when_asked(capsys):
    graph = {("leaf", i): (_sleepy, 0.3, i) for i in range(12)}
    graph["total"] = (sum, list(graph))
    with wukong.Client(monitoring={"progress": True}, timeout=120) as shown:
        assert shown.get(graph, "total") == sum(range(12))
    bar = capsys.readouterr().err
    assert "task" in bar and "/13" in bar
    with wukong.Client(timeout=120) as default:  # stderr is not a terminal here
        assert default.get(graph, "total") == sum(range(12))
    assert capsys.readouterr().err == ""


def _slow_sum(marker: str, seconds: float, values: list[int]) -> int:
    with open(marker, "w"):
        pass
    time.sleep(seconds)
    return sum(values)


def test_a_running_jobs_task_records_leave_the_store_as_they_come(tmp_path):
    marker = str(tmp_path / "slow-started")
    graph: dict = {"root": (operator.pos, 1)}
    graph.update({("quick", i): (operator.add, "root", i) for i in range(16)})
    graph["total"] = (_slow_sum, marker, 6.0, [("quick", i) for i in range(16)])
    with wukong.Client(timeout=120) as client, ThreadPoolExecutor(1) as running:
        answer = running.submit(client.get, graph, "total")
        while not os.path.exists(marker) and not answer.done():
            time.sleep(0.05)
        time.sleep(2.5)  # the client takes the records every second
        assert not answer.done()
        left = [key for key in client.stores.metadata.list_keys("wukong/") if key.endswith("/tasks")]
        assert left == [], "the records of the quick tasks' executors wait in the store for the job's end"
        assert answer.result() == dask.get(graph, "total")
    assert len(client.last_job.metrics.tasks) == len(graph)


def test_short_jobs_show_no_bar(capsys):
    with wukong.Client(monitoring={"progress": True}, timeout=120) as client:
        client.get({"x": (operator.add, 1, 2)}, "x")  # the workers' first job imports what they need
        capsys.readouterr()
        assert client.get({"x": (operator.add, 1, 2)}, "x") == 3
        assert capsys.readouterr().err == ""
