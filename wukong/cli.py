"""The ``wukong`` command: ``wukong demo``, ``wukong bench`` and ``wukong plugins``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence


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
    return 0 if total == expected and agrees else 1


def _bench(args: argparse.Namespace) -> int:
    from wukong.bench import run_from_arguments

    return run_from_arguments(args)


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
    demo.set_defaults(run=_demo)
    bench = commands.add_parser("bench", help="time wukong beside Dask's engines on the paper's workloads")
    from wukong.bench import add_arguments

    add_arguments(bench)
    bench.set_defaults(run=_bench)
    plugins = commands.add_parser("plugins", help="list every backend found and where it came from")
    plugins.set_defaults(run=_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wukong`` command."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
