"""``wukong gc``: the decisions alone, then the command on a real Redis, with a killed client's job."""

from __future__ import annotations

import operator
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import wukong
from wukong import gc
from wukong.cli import main
from wukong.core.keys import JobKeys

NOW = 1_000_000.0


def _job(name: str, submitted: float | None, heartbeat: float | None) -> gc.StoredJob:
    return gc.StoredJob(name, (f"wukong/{name}/p/0",), 10, submitted, heartbeat)


JOBS = [
    _job("running", NOW - 7200, NOW - 2),  # two hours old, its client beat two seconds ago
    _job("abandoned", NOW - 7200, NOW - 3600),
    _job("young", NOW - 30, NOW - 600),  # abandoned too, but submitted only 30 s ago
    _job("ended", None, None),  # leftovers only
]


def test_older_than_takes_abandoned_and_ended_jobs_never_running_ones():
    choice = gc.choose(JOBS, NOW, older_than=3600)
    assert [job.job for job in choice.remove] == ["abandoned", "ended"]
    assert [job for job, _ in choice.refused] == ["running"]
    assert "running" in choice.refused[0][1]


def test_named_jobs_are_removed_unless_running_or_unknown():
    choice = gc.choose(JOBS, NOW, named=["young", "running", "nope"])
    assert [job.job for job in choice.remove] == ["young"]
    assert dict(choice.refused).keys() == {"running", "nope"}
    assert "no such job" in dict(choice.refused)["nope"]


def test_nothing_named_and_no_age_removes_nothing():
    assert gc.choose(JOBS, NOW) == gc.Choice([], [])


def test_a_shorter_stale_after_makes_a_quiet_client_abandoned():
    assert JOBS[0].state(NOW) == "running"
    assert JOBS[0].state(NOW, stale_after=1) == "abandoned"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1.5d", 129600)]
)
def test_ages(text, seconds):
    assert gc.parse_age(text) == seconds


def test_a_bad_age_is_refused_with_examples(capsys, redis_url):
    assert main(["gc", "--storage", redis_url, "--older-than", "soon"]) == 2
    assert "examples: 90s" in capsys.readouterr().err


def test_the_embedded_store_has_nothing_to_collect(capsys):
    assert main(["gc", "--storage", "embedded"]) == 2
    assert "--storage redis://" in capsys.readouterr().err


CLIENT = """
import operator, sys, time
import wukong

def slow(x):
    time.sleep(60)
    return x

if __name__ == "__main__":
    client = wukong.Client(storage=sys.argv[1], compute_options={"workers": 1})
    print("ready", flush=True)
    client.get({"a": 1, "b": (slow, "a"), "c": (operator.add, "b", 1)}, "c")
"""


def test_a_killed_clients_job_is_listed_refused_while_fresh_then_removed(tmp_path, capsys, redis_url):
    script = tmp_path / "client.py"
    script.write_text(textwrap.dedent(CLIENT))
    child = subprocess.Popen([sys.executable, str(script), redis_url], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with wukong.Client(storage=redis_url, compute_options={"mode": "threads"}) as probe:
            deadline = time.monotonic() + 30
            while not (jobs := gc.find_jobs(probe.stores)) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert len(jobs) == 1, "the client's job never appeared"
        job = jobs[0].job
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    capsys.readouterr()

    # Just killed, its heartbeat is fresh: listed as running, and refused.
    assert main(["gc", "--storage", redis_url]) == 0
    listing = capsys.readouterr().out
    assert job in listing and "running" in listing
    assert main(["gc", "--storage", redis_url, "--job", job]) == 1
    assert f"not removing {job}: running" in capsys.readouterr().err

    # Once its heartbeat is older than --stale-after it is abandoned; a dry run removes nothing.
    time.sleep(1.5)
    stale = ["--stale-after", "1s"]
    assert main(["gc", "--storage", redis_url, "--older-than", "0s", "--dry-run", *stale]) == 0
    assert f"would remove {job}" in capsys.readouterr().out
    with wukong.Client(storage=redis_url, compute_options={"mode": "threads"}) as probe:
        assert probe.stores.list_keys(JobKeys(job).prefix), "the dry run removed keys"
        assert main(["gc", "--storage", redis_url, "--older-than", "0s", *stale]) == 0
        assert f"removed {job}" in capsys.readouterr().out
        time.sleep(1)  # the killed client's worker, if it still ran, would write now
        assert probe.stores.list_keys(JobKeys(job).prefix) == []


def _nap(value: int) -> int:
    time.sleep(1.5)
    return value


def test_gc_never_removes_a_running_jobs_keys(capsys, redis_url):
    graph = {"a": 1, "b": (_nap, "a"), "c": (operator.add, "b", 1)}
    with wukong.Client(storage=redis_url, compute_options={"workers": 1}) as client:
        result: list[int] = []
        runner = threading.Thread(target=lambda: result.append(client.get(graph, "c")))
        runner.start()
        deadline = time.monotonic() + 30
        while not gc.find_jobs(client.stores) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert main(["gc", "--storage", redis_url, "--older-than", "0s"]) == 0
        assert "running" in capsys.readouterr().err
        runner.join()
        assert result == [2]
