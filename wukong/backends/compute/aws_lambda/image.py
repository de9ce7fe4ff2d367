"""A container image for the function, when its dependencies are too big for a zip.

Lambda unpacks a zip to at most 250 MB; numpy, pandas, pyarrow and scipy together go past that. A
container image may hold 10 GB. wukong writes the image's build context: a Dockerfile on AWS's
Lambda base image for the runtime's Python, the pinned requirements (the same pins and the same
wheel checks as the zip), wukong's own code and the versions the image will hold. Building and
pushing it to ECR is docker's job, so it happens only where docker runs; elsewhere the user is given
the commands. The function is then created from the image's URI (``PackageType=Image``), with the
same role, policy, recursion setting and environment as a zip function.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement

from wukong.backends.compute.aws_lambda.deploy import (
    HANDLER,
    PINNED_PACKAGES,
    STAMP_FILE,
    WUKONG_SOURCE,
    function_requirements,
    source_files,
)
from wukong.backends.compute.environment import encode_stamp, version_stamp

BASE_IMAGE = "public.ecr.aws/lambda/python"
_DOCKER_PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}

_DOCKERFILE = """\
# The wukong executor for AWS Lambda, {runtime} on {architecture}; written by `wukong lambda deploy --image`.
FROM {base}:{python_version}
COPY requirements.txt .
# Binary wheels only, as for the zip: the pins were checked to have one for this platform.
RUN pip install --no-cache-dir --only-binary=:all: --target "${{LAMBDA_TASK_ROOT}}" -r requirements.txt
COPY {stamp_file} .
COPY wukong/ ${{LAMBDA_TASK_ROOT}}/wukong/
CMD ["{handler}"]
"""


def write_image_context(
    directory: Path,
    *,
    python_version: str,
    architecture: str = "x86_64",
    extra_requirements: Sequence[str] = (),
) -> dict[str, str]:
    """Write the image's build context into ``directory``; return the versions it will hold.

    The versions (the stamp) are the pins; a package left unpinned (no wheel of the client's version
    for the runtime) is stamped ``unpinned``, so a client refuses the function until the two agree.
    """
    requirements = function_requirements(python_version, architecture, extra_requirements)
    pins = {
        Requirement(line).name.lower(): str(Requirement(line).specifier).removeprefix("==")
        for line in requirements
    }
    stamp = version_stamp(
        python=python_version, **{name: _pinned_version(pins.get(name, "")) for name in PINNED_PACKAGES}
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "requirements.txt").write_text("".join(f"{line}\n" for line in requirements))
    (directory / STAMP_FILE).write_text(encode_stamp(stamp))
    (directory / "Dockerfile").write_text(
        _DOCKERFILE.format(
            runtime=f"python{python_version}",
            architecture=architecture,
            base=BASE_IMAGE,
            python_version=python_version,
            stamp_file=STAMP_FILE,
            handler=HANDLER,
        )
    )
    shutil.rmtree(directory / "wukong", ignore_errors=True)
    for path in source_files():
        target = directory / "wukong" / path.relative_to(WUKONG_SOURCE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return stamp


def _pinned_version(version: str) -> str:
    return version if version[:1].isdigit() else "unpinned"


def docker_commands(directory: Path, image_uri: str, architecture: str) -> list[list[str]]:
    """The commands that build the context in ``directory`` as ``image_uri`` and push it."""
    platform = _DOCKER_PLATFORMS[architecture]
    # Lambda takes a single-platform image manifest; buildx would add an attestation index.
    build = ["docker", "build", "--platform", platform, "--provenance=false", "-t", image_uri, str(directory)]
    return [build, ["docker", "push", image_uri]]
