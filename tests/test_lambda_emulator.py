"""AWS Lambda as a user meets it, against ministack: an independent emulator, with IAM enforced.

The function is deployed exactly as the README says (`wukong lambda deploy`, no `--package`): the
package is built from PyPI, pinned to this environment's versions, and ministack runs it in an
environment of its own that has neither wukong nor its dependencies. Jobs then run with
``compute="lambda"`` and a real redis-server, and are compared with Dask's synchronous scheduler;
the session's stores must be empty after each test (conftest).

What ministack cannot show (duplicate deliveries, platform retries that keep their request id,
throttling) is tested against the local Invoke API server in test_lambda.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import operator
import time
from collections.abc import Iterator

import boto3
import dask
import numpy as np
import pytest

import wukong
from tests.conftest import s3_data_settings
from wukong.backends.compute.aws_lambda.deploy import INVOKE_POLICY
from wukong.backends.compute.environment import STAMP_VARIABLE
from wukong.cli import main
from wukong.testing import workloads
from wukong.testing.servers import ministack_server

pytestmark = pytest.mark.slow
FUNCTION = "wukong-executor"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with ministack_server() as server:
        yield server.url


@pytest.fixture(scope="module")
def deployed(emulator: str) -> dict:
    """The function, deployed as the README shows, and what the deploy printed and took."""
    started = time.perf_counter()
    output = _deploy(emulator)
    seconds = time.perf_counter() - started
    # The harness's help (not wukong's): AWS retries a throttled asynchronous event for hours,
    # ministack only as often as a failed one, so it gets many retries (see docs/backends/lambda.md).
    _lambda(emulator).put_function_event_invoke_config(FunctionName=FUNCTION, MaximumRetryAttempts=100)
    return {"output": output, "seconds": seconds}


def _deploy(emulator: str, *more: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([
            "lambda", "deploy", "--function", FUNCTION, "--memory", "3008", "--timeout", "300",
            "--region", REGION, "--endpoint-url", emulator, *more,
        ])  # fmt: skip
    assert status == 0, printed.getvalue()
    return printed.getvalue()


def _lambda(emulator: str):
    return boto3.client("lambda", endpoint_url=emulator, region_name=REGION)


def _settings(emulator: str, redis_url: str, **more) -> dict:
    options = {"endpoint_url": emulator, "region_name": REGION}
    return {"compute": "lambda", "compute_options": options, "storage": redis_url, "timeout": 300, **more}


@pytest.fixture(scope="module")
def client(emulator, deployed, redis_url) -> Iterator[wukong.Client]:
    with wukong.Client(**_settings(emulator, redis_url)) as client:
        yield client


def test_the_deploy_says_what_it_did(deployed, emulator):
    output = deployed["output"]
    configuration = _lambda(emulator).get_function_configuration(FunctionName=FUNCTION)
    assert configuration["FunctionArn"] in output
    assert configuration["Runtime"] in output and "MB unzipped" in output
    assert "recursive loops: Allow" in output
    loop = _lambda(emulator).get_function_recursion_config(FunctionName=FUNCTION)
    assert loop["RecursiveLoop"] == "Allow"
    print(f"deploy to a live function: {deployed['seconds']:.1f} s")


def test_a_fan_out_and_fan_in(client):
    source = dask.delayed(np.arange)(64)
    parts = [dask.delayed(operator.getitem)(source, slice(i, i + 4)) for i in range(0, 64, 4)]
    total = dask.delayed(sum)([dask.delayed(np.sum)(part) for part in parts])
    assert client.compute(total) == total.compute(scheduler="sync") == sum(range(64))
    assert client.last_job.leaves == 1 and client.last_job.tasks == 34


def test_a_tree_reduction_of_256_leaves(client):
    graph, root = workloads.tree_reduction(256)
    assert client.get(graph, root) == dask.get(graph, root)
    seconds = client.last_job.seconds
    print(
        f"TR-256 on ministack: submit (client invokes) {seconds['submit']:.2f} s, run {seconds['run']:.2f} s"
    )


def test_gemm_and_svd(client):
    product = workloads.gemm()
    np.testing.assert_allclose(client.compute(product), workloads.reference(product)[0], rtol=1e-12)
    u, s, v = workloads.svd_tall_skinny()
    for got, want in zip(client.compute(u, s, v), workloads.reference(u, s, v), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_a_chain_of_invocations_longer_than_lambdas_loop_limit(client):
    # Each level's two tasks need both of the level before, so each level is one more invocation
    # in a row: 40 hops, past the 16 at which Lambda stops a loop by default.
    left, right = dask.delayed(1), dask.delayed(2)
    for level in range(40):
        left, right = (
            dask.delayed(operator.add)(left, right, dask_key_name=f"left-{level}"),
            dask.delayed(operator.sub)(left, right, dask_key_name=f"right-{level}"),
        )
    total = dask.delayed(operator.add)(left, right)
    assert client.compute(total) == total.compute(scheduler="sync")


def test_a_task_that_raises_names_its_key(client):
    def fail(x):
        raise ValueError(f"bad input {x}")

    job = dask.delayed(sum)([dask.delayed(fail)(1, dask_key_name="the-failing-task"), 2])
    with pytest.raises(ValueError, match="bad input 1") as failed:
        client.compute(job)
    assert "the-failing-task" in "\n".join(failed.value.__notes__)
    client.settle()


def test_s3_as_the_data_store(emulator, deployed, redis_url, s3_endpoint):
    settings = {**_settings(emulator, redis_url), **s3_data_settings(s3_endpoint)}
    with wukong.Client(**settings) as client:
        product = workloads.gemm()
        np.testing.assert_allclose(client.compute(product), workloads.reference(product)[0], rtol=1e-12)


def test_a_role_without_invoke_rights_fails_the_first_fan_out_clearly(emulator, deployed, redis_url):
    iam = boto3.client("iam", endpoint_url=emulator, region_name=REGION)
    iam.delete_role_policy(RoleName=FUNCTION, PolicyName=INVOKE_POLICY)  # as an older wukong deployed it
    try:
        with wukong.Client(**_settings(emulator, redis_url)) as client:
            source = dask.delayed(np.arange)(8)  # one leaf, whose executor must invoke the others
            parts = [dask.delayed(operator.getitem)(source, i) for i in range(8)]
            started = time.perf_counter()
            with pytest.raises(wukong.ComputeError, match=r"lambda:InvokeFunction.*wukong lambda deploy"):
                client.compute(dask.delayed(sum)(parts))
            assert time.perf_counter() - started < 60  # at the first failing invocation, not a timeout
            client.settle()
    finally:
        _deploy(emulator)  # idempotent: the policy is back


def test_a_function_that_stops_loops_is_refused_before_any_job(emulator, deployed, redis_url):
    functions = _lambda(emulator)
    functions.put_function_recursion_config(FunctionName=FUNCTION, RecursiveLoop="Terminate")
    try:
        with pytest.raises(wukong.ConfigError, match="RecursiveLoop=Terminate"):
            wukong.Client(**_settings(emulator, redis_url))
    finally:
        functions.put_function_recursion_config(FunctionName=FUNCTION, RecursiveLoop="Allow")


def test_a_function_built_for_other_versions_is_refused_before_any_job(emulator, deployed, redis_url):
    functions = _lambda(emulator)
    variables = functions.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    stamp = json.loads(variables[STAMP_VARIABLE])
    older = {**variables, STAMP_VARIABLE: json.dumps({**stamp, "python": "3.12", "numpy": "1.26.4"})}
    functions.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": older})
    functions.get_waiter("function_updated_v2").wait(FunctionName=FUNCTION)
    try:
        with pytest.raises(wukong.ConfigError, match=r"python 3\.12 there.*numpy 1\.26\.4 there.*deploy"):
            wukong.Client(**_settings(emulator, redis_url))
    finally:
        functions.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": variables})
        functions.get_waiter("function_updated_v2").wait(FunctionName=FUNCTION)


def test_a_function_that_does_not_exist_is_refused_before_any_job(emulator, redis_url):
    settings = _settings(emulator, redis_url)
    settings["compute_options"]["function"] = "never-deployed"
    with pytest.raises(wukong.ComputeError, match=r"never-deployed.*does not exist.*wukong lambda deploy"):
        wukong.Client(**settings)
