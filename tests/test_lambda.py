"""The Lambda backend through real boto3 calls to the local Invoke API server.

The engine suite runs on Lambda through the pairings in ``conftest.py``; this file covers what is
Lambda's own: the Invoke API's limits and error shapes, usage and cost, throttling, lost
invocations, missing functions and credentials, payloads kept in storage, and repeated deliveries.
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import wukong
from tests.conftest import lambda_settings
from wukong.backends.compute.aws_lambda.backend import PRICE_PER_GB_SECOND_USD, PRICE_PER_REQUEST_USD
from wukong.backends.compute.aws_lambda.events import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT
from wukong.testing.servers import lambda_server


def stats(endpoint: str) -> Counter[str]:
    with urllib.request.urlopen(f"{endpoint}/_local/stats") as answer:
        return Counter(json.load(answer))


def lambda_client(endpoint: str):
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", config=config)


def fan_out(width: int) -> dict:
    graph = {"root": (operator.add, 1, 1)}  # a task, not a literal: the executors fan out from it
    graph.update({("leaf", i): (operator.mul, "root", i) for i in range(width)})
    graph["total"] = (sum, [("leaf", i) for i in range(width)])
    return graph


def error_code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = error.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_invoke_api_limits_and_error_shapes(lambda_endpoint):
    client = lambda_client(lambda_endpoint)
    too_big_event = json.dumps({"x": "a" * ASYNC_PAYLOAD_LIMIT}).encode()
    with pytest.raises(ClientError) as error:
        client.invoke(FunctionName="wukong-executor", InvocationType="Event", Payload=too_big_event)
    assert error_code(error) == ("RequestEntityTooLargeException", 413)

    # Under 6 MB a synchronous invoke goes through: the real handler refuses a foreign event.
    answer = client.invoke(FunctionName="wukong-executor", Payload=json.dumps({"x": "a" * 5_000_000}))
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    document = json.load(answer["Payload"])
    assert document["errorType"] == "ValueError" and "not a wukong invocation" in document["errorMessage"]

    with pytest.raises(ClientError) as error:
        client.invoke(FunctionName="wukong-executor", Payload=json.dumps({"x": "a" * SYNC_PAYLOAD_LIMIT}))
    assert error_code(error) == ("RequestEntityTooLargeException", 413)
    with pytest.raises(ClientError) as error:
        client.invoke(FunctionName="no-such-function", InvocationType="Event", Payload=b"{}")
    assert error_code(error) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as error:
        client.invoke(FunctionName="wukong-executor", InvocationType="Event", Payload=b"not json")
    assert error_code(error) == ("InvalidRequestContentException", 400)
    configuration = client.get_function_configuration(FunctionName="wukong-executor")
    assert configuration["Handler"] == "wukong.backends.compute.aws_lambda.handler.handler"


def test_a_job_reports_invocations_billed_time_and_cost(lambda_endpoint, redis_url):
    with wukong.Client(storage=redis_url, **lambda_settings(lambda_endpoint)) as client:
        assert client.get(fan_out(10), "total") == 2 * sum(range(10))
        usage = client.last_job.usage
    # The root's executor becomes one leaf and invokes nine; the leaf that completes the sum's
    # counter runs it. Ten executors in all, each billed at least a millisecond.
    assert usage.invocations == 10
    assert usage.billed_seconds >= 0.010
    assert usage.gb_seconds == pytest.approx(usage.billed_seconds * 1024 / 1024)
    expected = 10 * PRICE_PER_REQUEST_USD + usage.gb_seconds * PRICE_PER_GB_SECOND_USD["x86_64"]
    assert usage.cost_usd == pytest.approx(expected)


def test_repeated_deliveries_run_each_task_once(lambda_duplicates_endpoint, redis_url):
    before = stats(lambda_duplicates_endpoint)
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "log")
        graph = {"root": (log_and_add, log_path, "first", 1, 1)}
        graph.update({("leaf", i): (log_and_add, log_path, f"leaf {i}", "root", i) for i in range(20)})
        graph["total"] = (sum, [("leaf", i) for i in range(20)])
        with wukong.Client(storage=redis_url, **lambda_settings(lambda_duplicates_endpoint)) as client:
            assert client.get(graph, "total") == 20 * 2 + sum(range(20))
            assert client.last_job.usage.invocations == 20
            client.settle()
            assert client.stores.list_keys("wukong/") == []
        with open(log_path) as log:
            runs = Counter(line.strip() for line in log)
    assert len(runs) == 21 and set(runs.values()) == {1}
    after = stats(lambda_duplicates_endpoint)
    assert after["deliveries"] - before["deliveries"] >= 2 * (after["accepted"] - before["accepted"])


def log_and_add(log_path, name, a, b):
    with open(log_path, "a") as log:
        log.write(f"{name}\n")
    return a + b


def test_a_throttled_burst_still_finishes(redis_url):
    # 50 invokes a second: most of the 199 fan-out invokes get 429 at first, and are retried.
    with lambda_server("--max-rate", "50") as server:
        with wukong.Client(storage=redis_url, **lambda_settings(server.url)) as client:
            assert client.get(fan_out(200), "total") == 2 * sum(range(200))
        assert stats(server.url)["throttled"] > 0


def test_throttling_past_its_timeout_fails_clearly(redis_url):
    settings = lambda_settings("", invoker={"throttle_timeout": 0, "max_attempts": 1})
    with lambda_server("--max-rate", "0") as server:
        settings["compute_options"]["endpoint_url"] = server.url
        with wukong.Client(storage=redis_url, **settings) as client:
            with pytest.raises(wukong.ComputeError, match="kept throttling invokes"):
                client.get(fan_out(3), "total")
            client.settle()
            assert client.stores.list_keys("wukong/") == []


def exit_process(value):
    os._exit(1)


def test_an_executor_whose_process_dies_fails_the_job_clearly(redis_url):
    with lambda_server("--retries", "1", "--retry-delay", "0.1") as server:
        settings = lambda_settings(server.url, lost_after_seconds=3)
        with wukong.Client(storage=redis_url, **settings) as client:
            with pytest.raises(wukong.ComputeError, match="lost an invocation"):
                client.get({"a": (operator.add, 1, 1), "b": (exit_process, "a")}, "b")
            client.settle()
            assert client.stores.list_keys("wukong/") == []
            # The client, and the function, still run jobs.
            assert client.get(fan_out(4), "total") == 2 * sum(range(4))
        counts = stats(server.url)
    assert counts["failures"] >= 1 and counts["retries"] >= 1


def test_a_missing_function_fails_before_any_job(lambda_endpoint, redis_url):
    settings = lambda_settings(lambda_endpoint, function="not-deployed")
    with pytest.raises(wukong.ComputeError, match=r"not-deployed.*does not exist.*wukong lambda deploy"):
        wukong.Client(storage=redis_url, **settings)


def test_a_function_without_the_hash_seed_is_refused_before_any_job(redis_url):
    # As deployed by a wukong that set no PYTHONHASHSEED: its executors would each hash their own way.
    refused = pytest.raises(wukong.ConfigError, match=r"PYTHONHASHSEED=1.*wukong lambda deploy")
    with lambda_server("--env=PYTHONHASHSEED=1") as server, refused:
        wukong.Client(storage=redis_url, **lambda_settings(server.url))


def test_missing_credentials_fail_before_any_job(lambda_endpoint, redis_url, monkeypatch, tmp_path):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(wukong.ComputeError, match="no AWS credentials found"):
        wukong.Client(storage=redis_url, **lambda_settings(lambda_endpoint))


def test_an_invocation_that_cannot_fit_even_by_reference_is_a_clear_error(lambda_endpoint, redis_url):
    settings = lambda_settings(lambda_endpoint, invoker={"max_request_bytes": 256})
    with wukong.Client(storage=redis_url, **settings) as client:
        with pytest.raises(wukong.ComputeError, match="even when its payload is kept in storage"):
            client.get(fan_out(3), "total")
        client.settle()
        assert client.stores.list_keys("wukong/") == []


def exit_process_once(marker, value):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return value * 10


def test_lambdas_retry_of_a_crashed_executor_finishes_the_job_exactly(redis_url, tmp_path):
    # The platform retries the failed event with its request id: the retry owns the claim, replays
    # the crashed attempt, and the fan-out it had started is neither lost nor run twice.
    marker, log_path = str(tmp_path / "crashed"), str(tmp_path / "runs.log")
    graph = fan_out(6)
    graph[("leaf", 0)] = (exit_process_once, marker, "root")
    graph.update({("logged", i): (log_and_add, log_path, f"leaf {i}", ("leaf", i), 1) for i in range(6)})
    graph["total"] = (sum, [("logged", i) for i in range(6)])
    with lambda_server("--retries", "2", "--retry-delay", "0.2") as server:
        with wukong.Client(storage=redis_url, **lambda_settings(server.url, lost_after_seconds=20)) as client:
            assert client.get(graph, "total") == 20 + sum(2 * i + 1 for i in range(1, 6)) + 1
            client.settle()
            assert client.stores.list_keys("wukong/") == []
        counts = stats(server.url)
    assert counts["failures"] == 1 and counts["retries"] == 1
    with open(log_path) as log:
        runs = Counter(line.strip() for line in log)
    assert len(runs) == 6 and set(runs.values()) == {1}, runs


def test_the_function_handler_loads_no_client_code():
    # Every cold start imports the handler; the client and its settings models are not its business.
    script = (
        "import sys, wukong.backends.compute.aws_lambda.handler\n"
        "print(sorted(m for m in ('wukong.config', 'wukong.core.client', 'pydantic_settings', 'tqdm')"
        " if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    assert wukong.Client.__module__ == "wukong.core.client"  # still there for the client, on first use
