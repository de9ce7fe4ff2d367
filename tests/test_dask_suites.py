"""Dask's own tests, with wukong as the scheduler of every compute, pass where Dask's processes do.

The subset that fits CI's time: the tests of Dask's that broke under wukong before (bag groupby by
hash, disk shuffles, a delayed callable), beside their neighbours. Each runs three times, in pytest
processes of its own: under Dask's ``processes`` scheduler (the bar), on the embedded default, and
on the local pool whose workers share nothing. ``python -m wukong.testing.dask_suite run`` is the
full run (see docs/compatibility.md).
"""

from __future__ import annotations

import json

import pytest

from wukong.testing.dask_suite import read_report, regressions, run_suite

SUBSETS = {
    "dask.bag.tests.test_bag": "groupby or foldby or frequencies",
    "dask.tests.test_delayed": "callable or compute or operators or kwargs or pure or name or method",
    # Each with the shuffle_method fixture's disk and tasks cases.
    "dask.dataframe.tests.test_shuffle": (
        "shuffle_npartitions or set_index_general or set_index_2 or shuffle_sort or set_index_self_index "
        "or shuffle_empty_partitions or index_with_dataframe or shuffle_from_one"
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("suite", list(SUBSETS))
def test_no_test_that_passes_under_dask_processes_fails_under_wukong(suite, tmp_path):
    selection = ["-k", SUBSETS[suite]]
    baseline = run_suite(suite, "processes", tmp_path / "processes.jsonl", selection)
    passed = [test for test, entry in baseline["tests"].items() if entry["outcome"] == "passed"]
    assert len(passed) >= 10  # the subset selects real tests
    for variant in ("wukong", "wukong-share-nothing"):
        candidate = run_suite(suite, variant, tmp_path / f"{variant}.jsonl", selection)
        assert candidate["tests"].keys() == baseline["tests"].keys()
        assert regressions(baseline, candidate) == [], variant
        # Every test that computed under Dask computed through wukong: none bypassed it.
        computing = [test for test in passed if baseline["tests"][test]["computes"]]
        assert all(candidate["tests"][test]["computes"] for test in computing), variant


def _write(path, *lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_test_that_started_and_never_ended_counts_as_crashed(tmp_path):
    header = {"scheduler": "processes", "dask": "x"}
    _write(
        tmp_path / "baseline.jsonl",
        header,
        {"test": "a", "nodeid": "a", "started": True},
        {"test": "a", "outcome": "passed", "computes": 1},
        {"test": "b", "nodeid": "b", "started": True},
        {"test": "b", "outcome": "passed", "computes": 1},
    )
    _write(
        tmp_path / "candidate.jsonl",
        {**header, "scheduler": "wukong"},
        {"test": "a", "nodeid": "a", "started": True},
        {"test": "a", "outcome": "passed", "computes": 1},
        {"test": "b", "nodeid": "b", "started": True},  # the process died here
    )
    baseline, candidate = read_report(tmp_path / "baseline.jsonl"), read_report(tmp_path / "candidate.jsonl")
    assert candidate["tests"]["b"]["outcome"] == "crashed"
    assert regressions(baseline, candidate) == ["b"]
    assert regressions(candidate, baseline) == []
