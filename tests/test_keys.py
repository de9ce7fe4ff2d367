"""The key table: every JobKeys member is a declared kind, the docs show the table as it is."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from wukong.core.keys import KIND, KINDS, JobKeys, JobShape, job_keys, job_of, lifecycle_table

KEYS = JobKeys("3f2a")


def _member(kind_name: str, instance):
    member = getattr(KEYS, kind_name)
    return member(instance) if callable(member) else member


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
def test_each_kind_makes_the_key_its_member_makes(kind):
    instance = None if "<" not in kind.path else ("tasks_run" if "metric" in kind.path else 7)
    assert KEYS.key(kind, instance) == _member(kind.name, instance)
    assert KEYS.key(kind, instance).startswith(KEYS.prefix)


def test_every_member_that_makes_a_key_is_a_declared_kind():
    members = {name for name, _ in inspect.getmembers(JobKeys) if not name.startswith("_")}
    assert members - {"prefix", "key", "job"} == set(KIND)


def test_clean_up_lists_only_what_a_job_of_that_shape_has():
    plain = JobShape(tasks=3, pages=1, fan_ins=(2,), stored_outputs=(0, 1, 2), metric_names=("tasks_run",))
    names = {kind.name for kind, _ in job_keys(KEYS, plain)}
    assert names == {"alive", "page", "output", "counter", "records", "task_records", "live_executors",
                     "metric", "failed"}  # fmt: skip
    first_kind, first_key = next(job_keys(KEYS, plain))
    assert first_kind.name == "alive" and first_key == KEYS.alive
    retried = JobShape(
        tasks=3, pages=1, fan_outs=(0,), retries=True, speculates=True, repeats_deliveries=True
    )
    keys = {key for _, key in job_keys(KEYS, retried)}
    assert {KEYS.ended(2), KEYS.fanned_out(0), KEYS.won(1), KEYS.backup_out(1), KEYS.claim(2)} <= keys
    assert KEYS.fanned_out(1) not in keys


def test_job_of_reads_the_job_from_any_key():
    assert job_of(KEYS.output(3)) == "3f2a"
    assert job_of(KEYS.alive) == "3f2a"
    assert job_of("other/3f2a/o/1") is None
    assert job_of("wukong/") is None


def test_the_docs_show_the_table_as_it_is():
    text = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    start = text.index("<!-- key-lifecycle-table")
    start = text.index("\n", start) + 1
    end = text.index("<!-- end of key-lifecycle-table -->")
    assert text[start:end].strip() == lifecycle_table().strip(), (
        "docs/architecture.md's key table is stale: paste wukong.core.keys.lifecycle_table() there"
    )
