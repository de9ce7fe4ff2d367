"""The PDSW'19 and SoCC'20 experiments, one command each: ``wukong experiment NAME``.

Each prints a table with the paper's direction of effect beside ours, and writes ``NAME.png`` and
``NAME.json`` into ``--out`` (``benchmarks/results`` by default).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

EXPERIMENTS = {
    "tr-delays": (
        "wukong.experiments.tr_delays",
        "TR-1024 with 0/100/250/500 ms tasks: decentralized, centralized, Dask",
    ),
    "ideal-storage": ("wukong.experiments.ideal_storage", "SVD2 with a real store and with the ideal store"),
    "design-path": (
        "wukong.experiments.design_path",
        "centralized, then parallel invokers, then decentralized",
    ),
    "factor-analysis": ("wukong.experiments.factor_analysis", "each big-object optimisation off and on"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``wukong experiment``."""
    parser.add_argument("name", choices=sorted(EXPERIMENTS), help="which experiment")
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes: a sanity check in a minute or two"
    )
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement (median taken)")
    parser.add_argument("--out", default="benchmarks/results", help="where to write NAME.png and NAME.json")


def run_from_arguments(args: argparse.Namespace) -> int:
    """Run the experiment ``args`` name; 0 when every claim of the paper holds here, else 1."""
    module, _ = EXPERIMENTS[args.name]
    options = {"quick": args.quick}
    if args.repeat is not None:
        options["repeat"] = args.repeat
    outcome = importlib.import_module(module).run(**options)
    print(outcome.table())
    for path in outcome.save(args.out):
        print(f"wrote {path}")
    return 0 if all(claim.holds for claim in outcome.claims) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wukong.experiments NAME``."""
    parser = argparse.ArgumentParser(prog="wukong experiment", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_from_arguments(parser.parse_args(argv))
