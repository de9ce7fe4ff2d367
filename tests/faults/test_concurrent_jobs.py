"""Several clients run jobs with the same task keys on one store at once: each gets its own answer,
and cleaning up one job (a failed one included) never touches another's keys."""

from __future__ import annotations

import operator
import threading
import time

import pytest

import wukong
from wukong.testing.workloads import tree_reduction


def _scaled(factor: int) -> tuple[dict, tuple]:
    """The same keys for every client; the numbers differ, so a mixed-up output shows."""
    graph, root = tree_reduction(128)
    return {
        key: (operator.mul, factor, task) if key[0] == "leaf" else task for key, task in graph.items()
    }, root


def _slow_then_fail(value):
    time.sleep(0.3)
    raise RuntimeError(f"failing on {value}")


@pytest.mark.parametrize("compute", ["local", "simulated-lambda"])
def test_concurrent_jobs_with_identical_keys(redis_url, compute):
    clients = [wukong.Client(compute=compute, storage=redis_url, timeout=120) for _ in range(3)]
    answers: dict[int, list] = {i: [] for i in range(len(clients))}
    errors: list[BaseException] = []

    def work(index: int, client: wukong.Client) -> None:
        try:
            for round_ in range(2):
                factor = 10 * index + round_ + 1
                graph, root = _scaled(factor)
                answers[index].append((factor, client.get(graph, root)))
                if index == 0:  # one client also has jobs that fail while the others run
                    with pytest.raises(RuntimeError, match="failing on"):
                        client.get({**graph, "bad": (_slow_then_fail, root)}, "bad")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert not errors, errors
        for index, results in answers.items():
            assert len(results) == 2
            for factor, value in results:
                assert value == factor * sum(range(128)), (index, factor)
    finally:
        for client in clients:
            client.close()
    with wukong.Client(storage=redis_url) as checker:
        assert checker.stores.list_keys("wukong/") == []
