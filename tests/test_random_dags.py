"""Random DAGs: every task runs exactly once and the results match ``dask.get``."""

from __future__ import annotations

import os
import tempfile
from collections import Counter

import dask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def record_and_sum(log_path, key, *inputs):
    # O_APPEND writes of one short line are atomic, so executors in many processes can share the log.
    with open(log_path, "a") as log:
        log.write(f"{key}\n")
    return key + sum(inputs)


@st.composite
def random_dags(draw):
    """A DAG of up to 40 tasks; task i draws its inputs among tasks 0..i-1; some keys requested."""
    size = draw(st.integers(min_value=1, max_value=40))
    inputs = [
        draw(st.lists(st.integers(0, i - 1), max_size=min(i, 5), unique=True)) if i else []
        for i in range(size)
    ]
    wanted = draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=4, unique=True))
    return inputs, wanted


def build(inputs, log_path):
    return {f"t{i}": (record_and_sum, log_path, i, *[f"t{j}" for j in deps]) for i, deps in enumerate(inputs)}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dag=random_dags())
def test_random_dag_runs_every_needed_task_once(client, dag):
    inputs, wanted = dag
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "log")
        keys = [f"t{i}" for i in wanted]
        got = client.get(build(inputs, log_path), keys)
        with open(log_path) as log:
            runs = Counter(int(line) for line in log)
        reference_log = os.path.join(directory, "reference")
        assert got == dask.get(build(inputs, reference_log), keys)
        with open(reference_log) as log:
            needed = {int(line) for line in log}
    assert set(runs) == needed
    assert all(count == 1 for count in runs.values()), runs
