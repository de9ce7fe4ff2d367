"""The engine runs the same DAGs on every pairing and agrees with Dask's synchronous scheduler."""

from __future__ import annotations

import operator

import dask
import numpy as np
import pytest

from wukong.testing import workloads


def test_tree_reduction_of_1024_numbers(client):
    graph, root = workloads.tree_reduction(1024)
    assert client.get(graph, root) == dask.get(graph, root) == 1024 * 1023 // 2
    # The 1,024 numbers are folded into the first additions: 1,023 tasks, 512 of them leaves.
    assert client.last_job.tasks == 1023
    assert client.last_job.leaves == 512


def test_gemm(client):
    product = workloads.gemm()
    (expected,) = workloads.reference(product)
    np.testing.assert_allclose(client.compute(product), expected, rtol=1e-12)


def test_tall_and_skinny_svd(client):
    u, s, v = workloads.svd_tall_skinny()
    expected = workloads.reference(u, s, v)
    for got, want in zip(client.compute(u, s, v), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_svd_compressed(client):
    u, s, v = workloads.svd_compressed()
    expected = workloads.reference(u, s, v)
    for got, want in zip(client.compute(u, s, v), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_delayed_fan_out_and_fan_in(client):
    total = workloads.fan_out_fan_in(100)
    assert client.compute(total) == workloads.reference(total)[0] == 45.0 * sum(range(100))


def test_compute_with_scheduler_keyword(client):
    x = dask.array.arange(1000, chunks=100)
    assert (x * 2).sum().compute(scheduler=client.get) == 999_000


def test_several_results_in_nested_keys(client):
    graph = {
        "a": 1,
        "b": (operator.add, "a", 1),
        "c": (operator.mul, "b", 10),
        "d": (sum, ["a", "b", "c"]),
    }
    assert client.get(graph, [["a", "c"], "d", ["b"]]) == ((1, 20), 23, (2,))


def test_a_result_that_other_results_depend_on(client):
    graph = {"x": 2, "y": (operator.mul, "x", 3), "z": (operator.add, "y", "x")}
    assert client.get(graph, ["y", "z"]) == (6, 8)


def test_wide_fan_out_then_fan_in(client):
    # Every leaf's output is one S3 request each way (a few ms on moto's server), every leaf one
    # HTTP invoke on Lambda, and a thread of the client's process on the simulated Lambda (whose
    # executors share one interpreter lock), so those get fewer.
    slow = client.stores.data.name == "s3" or client.compute_backend.name in ("lambda", "simulated-lambda")
    width = 400 if slow else 10_000
    graph = {"root": 1}
    graph.update({("leaf", i): (operator.add, "root", i) for i in range(width)})
    graph["total"] = (sum, [("leaf", i) for i in range(width)])
    assert client.get(graph, "total") == dask.get(graph, "total") == width + sum(range(width))


@pytest.mark.slow
def test_deep_chain_runs_in_one_executor_without_recursion(client):
    depth = 20_000
    graph = {("x", 0): 0}
    graph.update({("x", i): (operator.add, ("x", i - 1), 1) for i in range(1, depth)})
    assert client.get(graph, ("x", depth - 1)) == depth - 1
    assert client.last_job.leaves == 1


def test_many_small_jobs_reuse_the_pool(client):
    for i in range(30):
        assert client.get({"a": i, "b": (operator.neg, "a")}, "b") == -i
