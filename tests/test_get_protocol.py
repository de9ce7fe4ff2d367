"""Dask's own conformance tests for scheduler ``get`` functions, on ``wukong.get`` and a client."""

from __future__ import annotations

import pytest
from dask.utils_test import GetFunctionTestMixin

import wukong


class TestDefaultGet(GetFunctionTestMixin):
    """``wukong.get``: the embedded default (local processes, embedded store)."""

    get = staticmethod(wukong.get)


class TestClientGet(GetFunctionTestMixin):
    """``Client.get`` on every pairing."""

    @pytest.fixture(autouse=True)
    def _use(self, client):
        self.get = client.get


def test_expression_and_task_spec_inputs(client):
    import dask.array as da
    from dask._task_spec import Alias, DataNode, Task, TaskRef

    graph = {
        "x": DataNode("x", 3),
        "y": Task("y", pow, TaskRef("x"), 2),
        "z": Alias("z", "y"),
    }
    assert client.get(graph, ["z", "y"]) == (9, 9)
    array = da.ones((10, 10), chunks=5) + 1
    # Dask hands schedulers an expression object for collections: get() normalises it.
    assert array.sum().compute(scheduler=client.get) == 200.0
