"""The ``wukong`` command: demo, bench, experiment, report, plugins, gc and lambda."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any


def _demo(args: argparse.Namespace) -> int:
    import operator

    import dask.array as da
    import numpy as np

    import wukong

    leaves = args.leaves
    graph: dict = {("tr", 0, i): i for i in range(leaves)}
    level, width = 0, leaves
    while width > 1:
        for i in range(width // 2):
            graph[("tr", level + 1, i)] = (
                operator.add, ("tr", level, 2 * i), ("tr", level, 2 * i + 1),
            )  # fmt: skip
        level, width = level + 1, width // 2
    root = ("tr", level, 0)
    x = da.random.random((args.rows, 100), chunks=(args.rows // 10, 100))
    _, singular_values, _ = da.linalg.svd(x)

    with wukong.Client(**({"storage": args.storage} if args.storage else {})) as client:
        print(f"wukong demo on {client.compute_backend.describe()} and {client.stores.describe()}")
        started = time.perf_counter()
        total = client.get(graph, root)
        elapsed = time.perf_counter() - started
        expected = leaves * (leaves - 1) // 2
        print(f"tree reduction of {leaves} numbers: {total} (expected {expected}) in {elapsed:.3f} s")
        started = time.perf_counter()
        values = client.compute(singular_values)
        elapsed = time.perf_counter() - started
        reference = singular_values.compute(scheduler="sync")
        agrees = np.allclose(values, reference, rtol=1e-9)
        print(
            f"SVD of a {args.rows}x100 array: top singular values {np.round(values[:3], 3)} "
            f"in {elapsed:.3f} s; matches dask's synchronous scheduler: {agrees}"
        )
        if args.report:
            client.last_job.save(args.report)
            print(f"the SVD job's report is in {args.report} (draw it with: wukong report {args.report})")
    return 0 if total == expected and agrees else 1


def _bench(args: argparse.Namespace) -> int:
    from wukong.bench import run_from_arguments

    return run_from_arguments(args)


def _experiment(args: argparse.Namespace) -> int:
    from wukong.experiments import run_from_arguments

    return run_from_arguments(args)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wukong.monitoring.report import JobReport
    from wukong.report import write_report

    output = args.output or str(Path(args.job).with_suffix(".html"))
    write_report(JobReport.load(args.job), output)
    print(f"wrote {output}")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from wukong.plugins.registry import backend_registry

    for kind in ("compute", "storage"):
        registry = backend_registry(kind)
        names = registry.names()
        width = max(map(len, names), default=0)
        print(f"{kind} backends:")
        for name in names:
            registered = registry.get(name)
            origin = registered.plugin
            if registered.distribution:
                origin += f" ({registered.distribution})"
            print(f"  {name:<{width}}  {registered.entry.description}  [from {origin}]")
    return 0


def _gc(args: argparse.Namespace) -> int:
    import json

    from wukong import gc
    from wukong.config import load_config
    from wukong.core.stores import Stores

    config = load_config(
        storage=args.storage,
        storage_options=json.loads(args.storage_options) if args.storage_options else None,
        data_storage=args.data_storage,
        data_storage_options=json.loads(args.data_storage_options) if args.data_storage_options else None,
    )
    if config.storage in ("embedded", "ideal"):
        print(
            f"wukong gc: the {config.storage} store lives and dies with its client, so it holds no "
            "other client's jobs; name the store to clean: --storage redis://host:6379/0",
            file=sys.stderr,
        )
        return 2
    try:
        older_than = None if args.older_than is None else gc.parse_age(args.older_than)
        stale_after = gc.parse_age(args.stale_after)
    except ValueError as error:
        print(f"wukong gc: {error}", file=sys.stderr)
        return 2
    data = None if config.data_storage is None else (config.data_storage, dict(config.data_storage_options))
    with Stores.open((config.storage, dict(config.storage_options)), data) as stores:
        now = time.time()
        jobs = gc.find_jobs(stores)
        print(f"{len(jobs)} job(s) in {stores.describe()}")
        if jobs:
            print(gc.format_table(jobs, now, stale_after))
        if not args.job and older_than is None:
            return 0
        choice = gc.choose(jobs, now, args.job, older_than, stale_after)
        for job, reason in choice.refused:
            print(f"not removing {job}: {reason}", file=sys.stderr)
        for job in choice.remove:
            if args.dry_run:
                print(f"would remove {job.job} ({len(job.keys):,} keys)")
            else:
                print(f"removed {job.job} ({gc.remove(stores, job.job):,} keys)")
        return 1 if choice.refused and args.job else 0


def _lambda_deploy(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from wukong.backends.compute.aws_lambda.deploy import (
        build_package,
        client_runtime,
        deploy,
        unzipped_bytes,
    )

    if args.image is not None:
        return _lambda_deploy_image(args)
    with tempfile.TemporaryDirectory(prefix="wukong-lambda-") as directory:
        package = args.package
        if package is None:
            args.runtime = args.runtime or client_runtime()
            python_version = args.runtime.removeprefix("python")
            print(f"building the package for Python {python_version} on {args.architecture}...")
            package = build_package(
                Path(directory) / "wukong.zip",
                python_version=python_version,
                architecture=args.architecture,
                dependencies=not args.no_dependencies,
                extra_requirements=args.requirement,
            )
        configuration = deploy(args.function, Path(package), **_deploy_settings(args))
        size, unzipped = Path(package).stat().st_size, unzipped_bytes(Path(package))
    _print_deployed(
        configuration,
        f"{configuration['Runtime']}, package {size / 2**20:.1f} MB ({unzipped / 2**20:.1f} MB unzipped)",
    )
    return 0


def _deploy_settings(args: argparse.Namespace) -> dict[str, Any]:
    from wukong.backends.compute.aws_lambda.invoker import InvokerSettings

    return {
        "memory_mb": args.memory,
        "timeout": args.timeout,
        "role": args.role,
        "runtime": args.runtime,
        "architecture": args.architecture,
        "environment": dict(pair.split("=", 1) for pair in args.env),
        "invoker": InvokerSettings(invokers=args.invokers),
        "bucket": args.bucket,
        "region_name": args.region,
        "endpoint_url": args.endpoint_url,
    }


def _print_deployed(configuration: dict[str, Any], package: str) -> None:
    print(
        f"deployed {configuration['FunctionArn']}: {configuration['MemorySize']} MB, "
        f"{configuration['Timeout']} s, {package}; role {configuration['Role']} may invoke the "
        f"function; recursive loops: {configuration['RecursiveLoop']}"
    )


def _lambda_deploy_image(args: argparse.Namespace) -> int:
    """Write the image's build context, build and push it with docker, and deploy the image."""
    import shlex
    import subprocess
    import tempfile
    from pathlib import Path

    from wukong.backends.compute.aws_lambda.deploy import client_runtime, deploy
    from wukong.backends.compute.aws_lambda.image import docker_commands, write_image_context

    runtime = args.runtime = args.runtime or client_runtime()
    stamp = None  # --skip-build: the pushed image is taken to match this client
    if not args.skip_build:
        context = Path(args.build_context or tempfile.mkdtemp(prefix="wukong-image-"))
        print(f"writing the image's build context for {runtime} on {args.architecture} to {context}...")
        stamp = write_image_context(
            context,
            python_version=runtime.removeprefix("python"),
            architecture=args.architecture,
            extra_requirements=args.requirement,
        )
        commands = docker_commands(context, args.image, args.architecture)
        for command in commands:
            print("$", shlex.join(command))
            try:
                subprocess.run(command, check=True)
            except (OSError, subprocess.CalledProcessError) as error:
                steps = "\n".join(f"  {shlex.join(step)}" for step in commands)
                print(
                    f"error: docker could not build and push the image ({error}). The build context is "
                    f"kept in {context}. Where docker runs and is logged in to the image's ECR "
                    f"registry, run:\n{steps}\nthen deploy the pushed image: the same command with "
                    "--skip-build.",
                    file=sys.stderr,
                )
                return 1
        if args.build_context is None:
            shutil.rmtree(context, ignore_errors=True)
    configuration = deploy(args.function, image_uri=args.image, stamp=stamp, **_deploy_settings(args))
    _print_deployed(configuration, f"image {args.image}")
    return 0


def _lambda_serve(args: argparse.Namespace) -> int:
    from wukong.testing.lambda_server import main as serve

    options = args.options[1:] if args.options[:1] == ["--"] else args.options
    serve(options)
    return 0


def _add_lambda_commands(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("lambda", help="deploy the AWS Lambda function, or serve a local stand-in")
    actions = group.add_subparsers(dest="action", required=True)
    deploy = actions.add_parser("deploy", help="build the package and create or update the function")
    deploy.add_argument("--function", default="wukong-executor", help="the function's name")
    deploy.add_argument("--memory", type=int, default=3008, help="MB per executor")
    deploy.add_argument("--timeout", type=int, default=300, help="seconds per invocation")
    deploy.add_argument("--role", help="execution role ARN (default: create or reuse wukong-executor)")
    deploy.add_argument("--runtime", help="Lambda Python runtime (default: this Python's, as pickling needs)")
    deploy.add_argument("--architecture", default="x86_64", choices=["x86_64", "arm64"])
    deploy.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    deploy.add_argument("--invokers", type=int, default=16, help="invoker threads per executor")
    deploy.add_argument("--bucket", help="S3 bucket to upload packages over 50 MB through")
    deploy.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    deploy.add_argument("--endpoint-url", help="another endpoint for Lambda, IAM and S3")
    deploy.add_argument("--package", help="deploy this zip instead of building one")
    deploy.add_argument("--requirement", action="append", default=[], help="one more pip requirement")
    deploy.add_argument("--no-dependencies", action="store_true", help="pack wukong's code alone")
    deploy.add_argument(
        "--image",
        metavar="URI",
        help="deploy a container image instead of a zip (for dependencies over 250 MB): write its "
        "build context, build and push it to this ECR URI with docker, then create the function from it",
    )
    deploy.add_argument("--build-context", metavar="DIR", help="where to write the image's build context")
    deploy.add_argument("--skip-build", action="store_true", help="the image is already pushed: deploy it")
    deploy.set_defaults(run=_lambda_deploy)
    serve = actions.add_parser(
        "serve",
        help="a local Lambda Invoke API on 127.0.0.1 running the handler in worker processes "
        "(options after --, see `python -m wukong.testing.lambda_server --help`)",
    )
    serve.add_argument("options", nargs=argparse.REMAINDER)
    serve.set_defaults(run=_lambda_serve)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``wukong`` command."""
    parser = argparse.ArgumentParser(prog="wukong", description="A serverless DAG engine for Dask.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run a tree reduction and an SVD on the configured backends (embedded by default)",
    )
    demo.add_argument("--leaves", type=int, default=1024, help="numbers in the tree reduction")
    demo.add_argument("--rows", type=int, default=200_000, help="rows of the tall-and-skinny array")
    demo.add_argument("--storage", help="a store name or URL instead of the configured one")
    demo.add_argument("--report", metavar="JOB.json", help="save the SVD job's report there")
    demo.set_defaults(run=_demo)
    bench = commands.add_parser("bench", help="time wukong beside Dask's engines on the paper's workloads")
    from wukong.bench import add_arguments

    add_arguments(bench)
    bench.set_defaults(run=_bench)
    experiment = commands.add_parser(
        "experiment", help="run one of the papers' experiments and plot it beside the paper's claims"
    )
    from wukong.experiments import EXPERIMENTS
    from wukong.experiments import add_arguments as add_experiment_arguments

    add_experiment_arguments(experiment)
    experiment.epilog = "; ".join(f"{name}: {about}" for name, (_, about) in EXPERIMENTS.items())
    experiment.set_defaults(run=_experiment)
    report = commands.add_parser(
        "report", help="draw a saved job report: task stream and summary, as HTML or PNG"
    )
    report.add_argument("job", metavar="JOB.json", help="a report saved by JobReport.save")
    report.add_argument("-o", "--output", help="report.html or report.png (default: JOB.html)")
    report.set_defaults(run=_report)
    plugins = commands.add_parser("plugins", help="list every backend found and where it came from")
    plugins.set_defaults(run=_plugins)
    from wukong import gc

    collect = commands.add_parser(
        "gc",
        help="list the jobs a store holds (age, keys, bytes); remove those named or older than an age",
    )
    collect.add_argument("--storage", help="the store's name or URL (default: the configured one)")
    collect.add_argument("--storage-options", metavar="JSON", help="the store's options, as JSON")
    collect.add_argument("--data-storage", help="the data store's name or URL, if the jobs used one")
    collect.add_argument("--data-storage-options", metavar="JSON", help="the data store's options")
    collect.add_argument("--job", action="append", default=[], help="remove this job (repeatable)")
    collect.add_argument("--older-than", metavar="AGE", help="remove jobs older than AGE (90s, 15m, 2h, 7d)")
    collect.add_argument(
        "--stale-after",
        metavar="AGE",
        default=f"{gc.STALE_AFTER_SECONDS:.0f}s",
        help="a job whose client has not shown life for AGE is abandoned, and may go (default: %(default)s)",
    )
    collect.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    collect.set_defaults(run=_gc)
    _add_lambda_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wukong`` command."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
