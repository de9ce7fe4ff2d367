"""A job's report as a PNG (matplotlib): the task stream, with the summary table beside it."""

from __future__ import annotations

from pathlib import Path

from wukong.monitoring.report import JobReport
from wukong.monitoring.timeline import PHASES
from wukong.report.stream import COLOURS, lanes
from wukong.report.summary import summary_rows


def render_png(report: JobReport, path: str | Path) -> None:
    """Draw the report into ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # an optional dependency: say how to get it
        raise RuntimeError("PNG reports need matplotlib: pip install 'wukong[plot]'") from error

    tasks = report.metrics.tasks
    executor_lanes = lanes(tasks)
    figure, (table_axes, stream_axes) = plt.subplots(
        1, 2, figsize=(16, max(4.0, min(12.0, 2 + len(executor_lanes) * 0.25))), width_ratios=(1, 2)
    )
    table_axes.axis("off")
    rows = summary_rows(report)
    table = table_axes.table(
        cellText=[[label, value[:60]] for label, value in rows], loc="upper left", cellLoc="left"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width((0, 1))
    for cell in table.get_celld().values():
        cell.set_edgecolor("#ddd")

    start = min((record.started for record in tasks), default=0.0)
    row_of = {lane.executor: index for index, lane in enumerate(executor_lanes)}
    for phase in PHASES:
        ys, lefts, widths = [], [], []
        for record in tasks:
            ys.append(row_of[record.executor])
            begin, end = record.span(phase)
            lefts.append(begin - start)
            widths.append(end - begin)
        stream_axes.barh(ys, widths, left=lefts, height=0.8, color=COLOURS[phase], label=phase, linewidth=0)
    stream_axes.set_ylim(len(executor_lanes) - 0.5, -0.5)
    stream_axes.set_xlabel("seconds since the first task started")
    stream_axes.set_ylabel("executor (in start order)")
    stream_axes.set_title(
        f"wukong job {report.job}: {report.tasks:,} tasks, {len(executor_lanes):,} executors"
    )
    stream_axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
