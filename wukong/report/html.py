"""A job's report as one self-contained HTML page: the summary table and the task stream (SVG).

The page needs no script and no network: tooltips are SVG titles, colours are inline.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from wukong.monitoring.report import JobReport
from wukong.monitoring.timeline import PHASES, TaskRecord
from wukong.report.stream import COLOURS, Lane, lanes, ticks
from wukong.report.summary import summary_rows

WIDTH = 1100
LABELS = 90  # room for the executor names left of the stream
AXIS = 28


def render_html(report: JobReport) -> str:
    """The whole page."""
    title = f"wukong job {report.job}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{render_fragment(report)}
</body>
</html>
"""


def render_fragment(report: JobReport) -> str:
    """The summary and the task stream as one element, styled only within itself (for notebooks)."""
    rows = "\n".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in summary_rows(report)
    )
    legend = " ".join(
        f'<span class="key"><span class="swatch" style="background:{COLOURS[phase]}"></span>{phase}</span>'
        for phase in PHASES
    )
    return f"""<div class="wukong-report">
<style>
.wukong-report table {{ border-collapse: collapse; margin-bottom: 20px; }}
.wukong-report th {{ text-align: left; padding: 2px 16px 2px 0; font-weight: 600; white-space: nowrap; }}
.wukong-report td {{ padding: 2px 0; }}
.wukong-report .key {{ margin-right: 14px; }}
.wukong-report .swatch {{
  display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px;
}}
.wukong-report svg text {{ font: 11px system-ui, sans-serif; fill: #444; }}
</style>
<table id="summary">
{rows}
</table>
<h2>Task stream</h2>
<p>One row per executor, in the order they started; {legend}</p>
{_stream_svg(report.metrics.tasks)}
</div>"""


def _stream_svg(tasks: Sequence[TaskRecord]) -> str:
    if not tasks:
        return "<p>No task records (turned off by <code>monitoring.task_records</code>).</p>"
    executor_lanes = lanes(tasks)
    start = min(record.started for record in tasks)
    span = max(max(record.ended for record in tasks) - start, 1e-6)
    row = max(2.0, min(18.0, 600 / len(executor_lanes)))
    height = AXIS + row * len(executor_lanes) + 4
    scale = (WIDTH - LABELS - 10) / span

    def x(moment: float) -> float:
        return LABELS + (moment - start) * scale

    # Crisp edges: a bar a pixel or two wide keeps its colour instead of fading into the page.
    parts = [
        f'<svg id="stream" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        'shape-rendering="crispEdges">'
    ]
    for tick in ticks(span):
        position = x(start + tick)
        parts.append(
            f'<line x1="{position:.1f}" y1="{AXIS - 6}" x2="{position:.1f}" y2="{height:.0f}" stroke="#ddd"/>'
            f'<text x="{position:.1f}" y="{AXIS - 10}" text-anchor="middle">{tick:g} s</text>'
        )
    for index, lane in enumerate(executor_lanes):
        top = AXIS + index * row
        parts.append(_lane_svg(lane, top, row, x, label=row >= 10))
    parts.append("</svg>")
    return "\n".join(parts)


def _lane_svg(lane: Lane, top: float, row: float, x: Callable[[float], float], label: bool) -> str:
    bar = max(row - 2, 1.5)
    parts = [f'<g class="executor" data-executor="{lane.executor}">']
    if label:
        parts.append(
            f'<text x="{LABELS - 6}" y="{top + row * 0.75:.1f}" text-anchor="end">{lane.executor}</text>'
        )
    for record in lane.tasks:
        tip = html.escape(
            f"{record.key} on executor {record.executor} ({record.worker}): "
            + ", ".join(f"{phase} {record.seconds(phase) * 1000:.2f} ms" for phase in PHASES)
        )
        left = x(record.started)
        # The whole task at least 2 px wide, in its longest phase's colour, so every task shows;
        # its phases drawn over it to scale.
        longest = max(PHASES, key=record.seconds)
        parts.append(
            f'<rect class="task" x="{left:.2f}" y="{top:.1f}" width="{max(x(record.ended) - left, 2):.2f}" '
            f'height="{bar:.1f}" fill="{COLOURS[longest]}"><title>{tip}</title></rect>'
        )
        for phase in PHASES:
            begin, end = record.span(phase)
            if x(end) - x(begin) >= 1:
                parts.append(
                    f'<rect x="{x(begin):.2f}" y="{top:.1f}" width="{x(end) - x(begin):.2f}" '
                    f'height="{bar:.1f}" fill="{COLOURS[phase]}"><title>{tip}</title></rect>'
                )
    parts.append("</g>")
    return "".join(parts)
