"""A conformance suite every compute backend runs as-is, built-in or third-party.

Subclass :class:`ComputeConformance` in a test module and give it a ``job_settings`` fixture: the
client settings that run jobs on your backend, with a store it can reach::

    class TestMyCompute(ComputeConformance):
        @pytest.fixture
        def job_settings(self, redis_url):
            return {"compute": "mycompute", "compute_options": {...}, "storage": redis_url}

Every check runs whole jobs through a client and compares each answer with Dask's synchronous
scheduler: a fan-out and fan-in that needs every executor to invoke and become, a wide fan-out, a
long chain, an input that travels by reference where payloads are small, a task that fails (its own
exception reaches the user and the job leaves no key behind), many jobs on one client, and a
backend closed twice. What a backend declares (``ComputeCapabilities``) is what the core relies
on, so each capability's consequence is checked where it is declared.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import add
from typing import Any

import dask
import pytest

from wukong.testing.workloads import tree_reduction


def _fail(value: Any) -> Any:
    raise ZeroDivisionError(f"failed on purpose with {value!r}")


def _fan_out_and_in(width: int) -> dict[Any, Any]:
    """One root, ``width`` tasks on it, each with a successor, all summed."""
    graph: dict[Any, Any] = {"root": (abs, -3)}
    for index in range(width):
        graph[("spread", index)] = (add, "root", index)
        graph[("twice", index)] = (add, ("spread", index), ("spread", index))
    graph["total"] = (sum, [("twice", index) for index in range(width)])
    return graph


class ComputeConformance:
    """The checks every compute backend passes, through whole jobs."""

    @pytest.fixture
    def job_settings(self) -> dict[str, Any]:
        """Client settings that run jobs on the backend under test; subclasses must override it."""
        raise NotImplementedError("a conformance subclass must define the job_settings fixture")

    @pytest.fixture
    def client(self, job_settings: dict[str, Any]) -> Iterator[Any]:
        """A client on the backend, for one test; closed after it."""
        from wukong.core.client import Client

        with Client(**job_settings, timeout=120, set_as_default=False) as client:
            yield client

    @staticmethod
    def _exact(client: Any, graph: dict[Any, Any], key: Any) -> Any:
        answer = client.get(graph, key)
        assert answer == dask.get(graph, key)
        assert client.stores.list_keys(f"wukong/{client.last_job.job}/") == [], "the job left keys"
        return answer

    def test_executors_invoke_and_become(self, client: Any) -> None:
        self._exact(client, _fan_out_and_in(8), "total")
        # One executor per leaf, and one more for each task invoked rather than become.
        assert client.last_job.metrics.totals.executors == 8

    def test_a_wide_fan_out(self, client: Any) -> None:
        self._exact(client, _fan_out_and_in(200), "total")

    def test_a_tree_reduction(self, client: Any) -> None:
        self._exact(client, *tree_reduction(256))

    def test_a_long_chain_runs_in_one_executor(self, client: Any) -> None:
        graph: dict[Any, Any] = {("link", 0): 1}
        for index in range(1, 300):
            graph[("link", index)] = (add, ("link", index - 1), index)
        self._exact(client, graph, ("link", 299))
        assert client.last_job.metrics.totals.executors == 1

    def test_a_big_input_travels(self, client: Any) -> None:
        # A literal bigger than some platforms' payloads: it goes in the schedule page, or by key.
        blob = b"w" * 300_000
        graph = {"blob": (bytes, blob), "size": (len, "blob"), "half": (len, (bytes, blob[:1000]))}
        assert list(self._exact(client, graph, ["size", "half"])) == [300_000, 1000]

    def test_a_failing_task_reaches_the_user(self, client: Any) -> None:
        graph = {"x": (abs, -1), "y": (_fail, "x"), "z": (add, "y", 1)}
        with pytest.raises(ZeroDivisionError, match="failed on purpose with 1"):
            client.get(graph, "z")
        client.settle()
        assert client.stores.list_keys("wukong/") == [], "the failed job left keys"

    def test_jobs_one_after_another(self, client: Any) -> None:
        for width in (1, 5, 20):
            self._exact(client, _fan_out_and_in(width), "total")

    def test_closing_twice_is_harmless(self, job_settings: dict[str, Any]) -> None:
        from wukong.core.client import Client

        client = Client(**job_settings, set_as_default=False)
        assert client.get({"a": (abs, -2)}, "a") == 2
        client.close()
        client.compute_backend.close()  # the client closed it already
