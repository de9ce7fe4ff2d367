"""Serialization: what a worker that never ran the user's script can read back."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np

from wukong.core import codec


def test_functions_of_the_users_script_travel_by_value(tmp_path):
    # A Lambda worker never ran the user's script: a function pickled by reference to __main__
    # would not be found there. The script's own functions must travel by value.
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from wukong.core import codec

            def add_one(x):
                return x + 1

            sys.stdout.buffer.write(codec.dumps({"node": (add_one, 41)}))
            """
        )
    )
    blob = subprocess.run([sys.executable, str(script)], capture_output=True, check=True).stdout
    reader = "import pickle, sys; f, x = pickle.loads(sys.stdin.buffer.read())['node']; print(f(x))"
    answer = subprocess.run([sys.executable, "-c", reader], input=blob, capture_output=True, check=True)
    assert answer.stdout.strip() == b"42"


def test_plain_values_keep_the_fast_path():
    value = {"a": np.arange(10), "b": [1, 2.5, "x"]}
    blob = codec.dumps(value)
    assert blob == pickle.dumps(value, protocol=codec.PROTOCOL)
    assert codec.loads(blob)["b"] == [1, 2.5, "x"]


def test_a_page_carries_dask_tasks_short_and_they_compute_the_same():
    import operator

    from dask._task_spec import Alias, Task, TaskRef

    # Nested, with keyword arguments; references as Alias (one named apart from its target) and TaskRef.
    inner = Task(None, max, Alias("a"), TaskRef("b"), Alias("alias-of-b", "b"), key=abs)
    task = Task(("sum", 0), operator.add, inner, 10, _data_producer=True)
    page = [task, Task("neg", operator.neg, TaskRef("a"))]
    blob = codec.dumps_page(page)
    again = codec.loads(blob)
    values = {"a": -3, "b": 2}
    assert [node(values) for node in again] == [node(values) for node in page] == [7, 3]
    assert again[0].key == ("sum", 0) and again[0].dependencies == task.dependencies == {"a", "b"}
    assert again[0].data_producer and not again[1].data_producer
    assert len(blob) < len(pickle.dumps(page, protocol=codec.PROTOCOL)), "no slots, no dependency sets"
