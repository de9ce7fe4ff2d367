"""The rows of a job's summary table, shared by the HTML page and the PNG."""

from __future__ import annotations

from wukong.monitoring.report import JobReport
from wukong.monitoring.timeline import PHASES


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def summary_rows(report: JobReport) -> list[tuple[str, str]]:
    """(label, value) pairs: what ran, what moved, where the time went, and the cost."""
    metrics = report.metrics
    summary = metrics.summary
    totals = metrics.totals
    rows = [
        ("Job", report.job),
        ("Compute", report.compute),
        ("Storage", report.storage),
        ("Tasks", f"{report.tasks:,}"),
        ("Tasks recorded", f"{summary.tasks:,}"),
        ("Executors", f"{summary.executors:,} ({report.leaves:,} invoked by the client)"),
        ("Workers", f"{summary.workers:,}"),
        ("Invocations by executors", f"{summary.invocations:,}"),
        ("Bytes written", _bytes(totals.data_bytes_written)),
        ("Bytes read", _bytes(totals.data_bytes_read)),
        ("Objects kept local", f"{totals.objects_kept_local:,}"),
        ("Reads avoided", f"{totals.reads_avoided:,}"),
    ]
    rows += [(f"Time in {phase}", f"{summary.seconds[phase]:.3f} s (summed over tasks)") for phase in PHASES]
    rows += [
        ("Task span", f"{summary.span_seconds:.3f} s (first task start to last task end)"),
        (
            "Critical path",
            f"{metrics.critical_path_seconds:.3f} s over {len(metrics.critical_path):,} tasks",
        ),
        (
            "Wall time",
            f"{report.total_seconds:.3f} s ("
            + ", ".join(f"{name} {seconds:.3f}" for name, seconds in report.seconds.items())
            + ")",
        ),
    ]
    if report.usage is not None:
        usage = report.usage
        rows.append(
            (
                "Estimated cost",
                f"${usage.cost_usd:.6f} ({usage.invocations:,} invocations, "
                f"{usage.billed_seconds:,.3f} billed s, {usage.gb_seconds:,.3f} GB-s)",
            )
        )
    if report.error is not None:
        rows.append(("Error", report.error))
    return rows
