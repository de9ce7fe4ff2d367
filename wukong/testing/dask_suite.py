r"""Run Dask's own test suites with wukong (or Dask's ``processes`` scheduler) under every compute.

A pytest plugin, loaded by name::

    python -m pytest -p wukong.testing.dask_suite --pyargs dask.bag.tests \\
        --dask-scheduler wukong --dask-suite-report wukong.jsonl

For the whole session it rebinds every scheduler name Dask knows (``"sync"``, ``"threads"``,
``"processes"`` and their aliases) and the default ``scheduler`` setting to one scheduler:
``wukong`` (:func:`wukong.get`, on the client the ``WUKONG_*`` environment configures) or
``processes`` (Dask's own, the bar wukong is held to). Every compute that goes through it is
counted, per test, so a test that bypassed it (calling ``dask.local.get_sync`` directly, say) shows
as one with no computes. The report lists each test's outcome and count;
``python -m wukong.testing.dask_suite compare BASELINE CANDIDATE`` lists the tests that pass in the
first and fail in the second.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
import dask.base
import pytest

# Every name Dask's get_scheduler resolves to a local scheduler.
SCHEDULER_NAMES = (
    "sync",
    "synchronous",
    "single-threaded",
    "threads",
    "threading",
    "processes",
    "multiprocessing",
)
PASSED = ("passed", "xpassed")
_ERROR_CHARACTERS = 300
# How wukong refuses a disk shuffle where executors share no filesystem (wukong.core.shuffles):
# by design, not a regression.
REFUSED_DISK_SHUFFLE = "starts a shuffle on disk"
FAILED = ("failed", "error", "crashed")


class CountingScheduler:
    """A Dask scheduler function that counts its computes before handing them to ``get``."""

    def __init__(self, name: str, get: Callable[..., Any]):
        self.name, self._get = name, get
        self.computes = 0

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        """Dask's scheduler protocol."""
        self.computes += 1
        return self._get(dsk, keys, **kwargs)


class WarmProcesses:
    """Dask's ``processes`` scheduler on one pool for the session, as Dask would start it.

    Dask starts a pool per compute unless given one; a warm pool runs the same code with the same
    pickling between processes, in a fraction of the time. The hash seed is set first, as Dask
    does for a pool of its own. A pool a test broke (by killing a worker) is replaced.
    """

    def __init__(self) -> None:
        self._pool: Any = None

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        """Dask's scheduler protocol."""
        from concurrent.futures.process import BrokenProcessPool

        import dask.multiprocessing

        if self._pool is None:
            self._pool = self._start()
        try:
            return dask.multiprocessing.get(dsk, keys, pool=self._pool, **kwargs)
        except BrokenProcessPool:
            self._pool = None
            raise

    @staticmethod
    def _start() -> Any:
        from concurrent.futures import ProcessPoolExecutor

        import dask.multiprocessing

        if os.environ.get("PYTHONHASHSEED") in (None, "0"):
            os.environ["PYTHONHASHSEED"] = "6640"  # what dask.multiprocessing.get sets
        return ProcessPoolExecutor(
            mp_context=dask.multiprocessing.get_context(),
            initializer=dask.multiprocessing.initialize_worker_process,
        )


def _scheduler(name: str) -> Callable[..., Any]:
    if name == "processes":
        return WarmProcesses()
    import wukong

    return wukong.get


class DaskSuitePlugin:
    """Rebinds Dask's schedulers for the session and records each test's outcome and computes.

    The report is JSON lines, written as the run goes: a test that started and has no outcome
    crashed the process (a segfault), and a rerun that deselects it appends to the same file.
    """

    def __init__(self, scheduler: str, report: Path | None, rootpath: Path):
        self.scheduler = CountingScheduler(scheduler, _scheduler(scheduler))
        self.report = report
        self.outcomes: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.tests_computing = 0
        self._rootpath = rootpath
        self._saved: dict[str, Any] = {}
        self._config: Any = None
        self._written = report.open("a") if report is not None else None
        self._write({"scheduler": scheduler, "dask": dask.__version__})

    def _write(self, line: dict[str, Any]) -> None:
        if self._written is not None:
            self._written.write(json.dumps(line) + "\n")
            self._written.flush()

    def start(self) -> None:
        """Make every scheduler name, and the default, this plugin's scheduler."""
        self._saved = {name: dask.base.named_schedulers.get(name) for name in SCHEDULER_NAMES}
        for name in SCHEDULER_NAMES:
            dask.base.named_schedulers[name] = self.scheduler
        self._config = dask.config.set(scheduler=self.scheduler)

    def stop(self) -> None:
        """Give Dask its schedulers back, and close the report."""
        for name, scheduler in self._saved.items():
            if scheduler is None:
                dask.base.named_schedulers.pop(name, None)
            else:
                dask.base.named_schedulers[name] = scheduler
        if self._config is not None:
            self._config.__exit__(None, None, None)
        if self._written is not None:
            self._written.close()

    def _name(self, location: tuple[str, int | None, str]) -> str:
        """``dask/bag/tests/test_bag.py::test_groupby``, wherever pytest was started."""
        path = (self._rootpath / location[0]).resolve().as_posix()
        return f"dask/{path.rpartition('/dask/')[2]}::{location[2]}"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        """Count the computes of one test, its fixtures included; name it before it runs."""
        name = self._name(item.location)
        self._write({"test": name, "nodeid": item.nodeid, "started": True})
        before, started = self.scheduler.computes, time.perf_counter()
        yield
        computes = self.scheduler.computes - before
        outcome = self.outcomes.pop(name, "passed")
        self.tests_computing += outcome != "skipped" and computes > 0
        seconds = round(time.perf_counter() - started, 3)
        line = {"test": name, "outcome": outcome, "computes": computes, "seconds": seconds}
        if name in self.errors:
            line["error"] = self.errors.pop(name)
        self._write(line)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the worst outcome of a test's setup, call and teardown."""
        if report.when == "call" or report.outcome != "passed":
            name = self._name(report.location)
            if self.outcomes.get(name) not in FAILED:
                self.outcomes[name] = _outcome(report)
                if report.failed:
                    crash = getattr(report.longrepr, "reprcrash", None)
                    message = crash.message if crash is not None else str(report.longrepr)
                    self.errors[name] = message[:_ERROR_CHARACTERS]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say how many tests ran computes through the scheduler."""
        terminalreporter.write_line(
            f"dask suite under {self.scheduler.name}: {self.tests_computing} tests computed through it "
            f"({self.scheduler.computes} computes)"
        )


def read_report(path: Path) -> dict[str, Any]:
    """A report as ``{"scheduler", "dask", "tests": {test: {"outcome", "computes"}}}``.

    A test that started and never ended crashed its process (``"crashed"``).
    """
    report: dict[str, Any] = {"tests": {}}
    tests = report["tests"]
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if "scheduler" in entry:
            report.update(scheduler=entry["scheduler"], dask=entry["dask"])
        elif entry.get("started"):
            tests.setdefault(entry["test"], {"outcome": "crashed", "computes": 0, "nodeid": entry["nodeid"]})
        else:
            ended = {
                name: entry[name] for name in ("outcome", "computes", "seconds", "error") if name in entry
            }
            tests.setdefault(entry["test"], {}).update(ended)
    return report


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xpassed" if report.passed else "xfailed"
    if report.when != "call" and report.failed:
        return "error"
    return report.outcome


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options."""
    group = parser.getgroup("dask-suite", "running Dask's test suites under another scheduler")
    group.addoption(
        "--dask-scheduler",
        choices=["wukong", "processes"],
        default="wukong",
        help="the scheduler of every compute: wukong.get, or Dask's processes scheduler",
    )
    group.addoption(
        "--dask-suite-report", type=Path, help="append each test's outcome and computes here (JSON lines)"
    )


def pytest_configure(config: pytest.Config) -> None:
    """Rebind Dask's schedulers for the session."""
    plugin = DaskSuitePlugin(
        config.getoption("--dask-scheduler"), config.getoption("--dask-suite-report"), config.rootpath
    )
    plugin.start()
    config.pluginmanager.register(plugin, "dask-suite-scheduler")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore Dask's schedulers."""
    plugin = config.pluginmanager.get_plugin("dask-suite-scheduler")
    if plugin is not None:
        plugin.stop()


def regressions(baseline: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """The tests that pass in ``baseline`` and fail (error, crash) in ``candidate``.

    A disk shuffle that wukong refused because its executors share no filesystem is not one: see
    :func:`refusals`.
    """
    return [test for test in _newly_failed(baseline, candidate) if not _refused(candidate, test)]


def refusals(baseline: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """The tests that pass in ``baseline`` and ask ``candidate`` for a disk shuffle it refuses."""
    return [test for test in _newly_failed(baseline, candidate) if _refused(candidate, test)]


def _newly_failed(baseline: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    theirs, ours = baseline["tests"], candidate["tests"]
    return sorted(
        test
        for test, entry in theirs.items()
        if entry["outcome"] in PASSED and ours.get(test, {}).get("outcome") in FAILED
    )


def _refused(report: dict[str, Any], test: str) -> bool:
    return REFUSED_DISK_SHUFFLE in report["tests"][test].get("error", "")


# The suites the full run covers, as ``--pyargs`` modules.
SUITES = (
    "dask.array.tests.test_array_core",
    "dask.array.tests.test_creation",
    "dask.array.tests.test_linalg",
    "dask.array.tests.test_reductions",
    "dask.array.tests.test_slicing",
    "dask.array.tests.test_ufunc",
    "dask.bag.tests",
    "dask.tests.test_delayed",
    "dask.dataframe.tests.test_shuffle",
    "dask.dataframe.tests.test_groupby",
    "dask.dataframe.tests.test_multi",
)

# How each variant runs: the plugin's scheduler, and the WUKONG_* settings of wukong's client.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "processes": ("processes", {}),
    "wukong": ("wukong", {}),
    "wukong-share-nothing": ("wukong", {"WUKONG_COMPUTE_OPTIONS": json.dumps({"share_nothing": True})}),
}


_MAX_CRASHES = 10  # reruns of one suite after a test crashed its process


def _location(suite: str) -> tuple[Path, Path]:
    """The installed path of a module or package of Dask's, and the directory that holds ``dask``."""
    spec = importlib.util.find_spec(suite)
    if spec is None or spec.origin is None:
        raise SystemExit(f"no module {suite} is installed")
    path = Path(spec.origin)
    if path.name == "__init__.py":
        path = path.parent
    return path, Path(importlib.util.find_spec("dask").origin).parent.parent  # type: ignore[union-attr]


def run_suite(suite: str, variant: str, report: Path, pytest_arguments: list[str]) -> dict[str, Any]:
    """Run one suite under one variant in pytest processes of its own; return its report.

    A test that crashes its process (a segfault) is recorded as such, and the rest of the suite
    runs again without it.
    """
    scheduler, settings = VARIANTS[variant]
    path, root = _location(suite)
    report.unlink(missing_ok=True)
    deselected: list[str] = []
    for _ in range(_MAX_CRASHES + 1):
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "wukong.testing.dask_suite",
            "--rootdir", str(root), "--dask-scheduler", scheduler, "--dask-suite-report", str(report),
            "--timeout", "300", *pytest_arguments, str(path),
        ]  # fmt: skip
        command += [f"--deselect={nodeid}" for nodeid in deselected]
        code = subprocess.call(command, env={**os.environ, **settings}, cwd=root)
        crashed = [
            entry["nodeid"]
            for entry in read_report(report)["tests"].values()
            if entry["outcome"] == "crashed" and entry["nodeid"] not in deselected
        ]
        if code in (0, 1, 5) or not crashed:  # ended (5: nothing collected), or failed otherwise
            break
        deselected += crashed
    return read_report(report)


def table(reports: dict[str, dict[str, dict[str, Any]]]) -> str:
    """A Markdown table of each suite's outcomes per variant, set against ``processes``.

    Per wukong variant: the tests that pass under ``processes`` and fail under it (regressions),
    and those it refused for asking for a disk shuffle where nothing is shared.
    """
    variants = [name for name in VARIANTS if name in next(iter(reports.values()), {})]
    ours = [name for name in variants if name != "processes"]
    header = ["suite", "tests"] + [f"pass: {name}" for name in variants]
    header += [f"regressions: {name}" for name in ours] + [f"disk shuffles refused: {name}" for name in ours]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for suite, by_variant in reports.items():
        tests = max(len(report["tests"]) for report in by_variant.values())
        row = [f"`{suite}`", str(tests)]
        row += [str(_count(by_variant[name], PASSED)) for name in variants]
        if "processes" in by_variant:
            baseline = by_variant["processes"]
            row += [str(len(regressions(baseline, by_variant[name]))) for name in ours]
            row += [str(len(refusals(baseline, by_variant[name]))) for name in ours]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _count(report: dict[str, Any], outcomes: tuple[str, ...]) -> int:
    return sum(1 for entry in report["tests"].values() if entry["outcome"] in outcomes)


def main(argv: list[str] | None = None) -> int:
    """``python -m wukong.testing.dask_suite run|compare``: the full run, or one comparison."""
    parser = argparse.ArgumentParser(description="Dask's own test suites under wukong and under Dask.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the suites under each variant; write reports and a table")
    run.add_argument("--out", type=Path, default=Path("dask-suite"), help="where reports go")
    run.add_argument("--suites", nargs="+", default=list(SUITES), metavar="MODULE")
    run.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    run.add_argument("pytest_arguments", nargs="*", help="passed on to pytest (after --)")
    compare = commands.add_parser("compare", help="tests that pass in BASELINE and fail in CANDIDATE")
    compare.add_argument("baseline", type=Path)
    compare.add_argument("candidate", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.out, args.suites, args.variants, args.pytest_arguments)
    baseline, candidate = (read_report(path) for path in (args.baseline, args.candidate))
    return _show(regressions(baseline, candidate), baseline["scheduler"], candidate["scheduler"])


def _run(out: Path, suites: list[str], variants: list[str], pytest_arguments: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict[str, dict[str, Any]]] = {}
    for suite in suites:
        for variant in variants:
            report = out / f"{suite}.{variant}.jsonl"
            reports.setdefault(suite, {})[variant] = run_suite(
                suite, variant, report.resolve(), pytest_arguments
            )
    text = table(reports)
    (out / "table.md").write_text(text + "\n")
    print(text)
    found = 0
    for suite, by_variant in reports.items():
        for variant, report in by_variant.items():
            if variant != "processes" and "processes" in by_variant:
                found += _show(regressions(by_variant["processes"], report), f"processes ({suite})", variant)
    return 1 if found else 0


def _show(found: list[str], baseline: str, candidate: str) -> int:
    for test in found:
        print(f"{candidate}: {test}")
    print(f"{len(found)} test(s) pass under {baseline} and fail under {candidate}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
