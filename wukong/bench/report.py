"""The benchmark report: a Markdown table, a JSON file and a PNG bar chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wukong.bench import Timing
    from wukong.bench.workloads import Workload


def header(facts: dict[str, Any]) -> str:
    """One comment line of machine facts."""
    return "# " + ", ".join(f"{key} {value}" for key, value in facts.items())


def table(chosen: Sequence[Workload], engines: Sequence[str], timings: Sequence[Timing]) -> str:
    """Median seconds (min-max) and the ratio to the best Dask engine, a row per workload."""
    found = {(t.workload, t.engine): t for t in timings}
    lines = [
        "| workload | " + " | ".join(engines) + " |",
        "| --- |" + " ---: |" * len(engines),
    ]
    for workload in chosen:
        cells = []
        for engine in engines:
            timing = found.get((workload.name, engine))
            if timing is None:
                cells.append("—")
                continue
            ratio = "" if timing.ratio_to_best_dask is None else f" ({timing.ratio_to_best_dask:.2f}x)"
            cells.append(f"{timing.median:.3f}{ratio}<br>{min(timing.runs):.3f}-{max(timing.runs):.3f}")
        lines.append(f"| {workload.name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Median seconds (ratio to the best Dask engine), min-max below.")
    return "\n".join(lines)


def scale_table(scale: dict[str, Any]) -> str:
    """The static scheduler beside ``dask.order``."""
    return "\n".join([
        f"| planning {scale['tasks']:,} tasks ({scale['graph']}) | seconds | peak bytes per task |",
        "| --- | ---: | ---: |",
        f"| wukong to the first invocation (normalise + partition + its pages) | "
        f"{scale['wukong_first_invocation_seconds']:.2f} | |",
        f"| wukong, every page (normalise + partition + pages) | {scale['wukong_seconds']:.2f} | "
        f"{scale['wukong_peak_bytes_per_task']:,.0f} |",
        f"| dask.order | {scale['dask_order_seconds']:.2f} | "
        f"{scale['dask_order_peak_bytes_per_task']:,.0f} |",
        "",
        f"Stored schedule pages: {scale['wukong_page_bytes_per_task']:,.0f} bytes a task.",
    ])  # fmt: skip


def write_json(
    path: str,
    facts: dict[str, Any],
    timings: list[dict[str, Any]],
    scale: dict[str, Any] | None,
    workloads: list[dict[str, str]],
) -> None:
    """Everything measured, for tools and for comparing runs."""
    with open(path, "w") as handle:
        json.dump(
            {"machine": facts, "workloads": workloads, "timings": timings, "partition": scale},
            handle,
            indent=2,
        )


def write_chart(path: str, engines: Sequence[str], timings: Sequence[Timing], facts: dict[str, Any]) -> None:
    """Grouped bars: per workload, each engine's median relative to the best Dask engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(t.workload for t in timings))
    found = {(t.workload, t.engine): t for t in timings}
    width = 0.8 / max(len(engines), 1)
    figure, axes = plt.subplots(figsize=(max(8, 1.6 * len(workloads)), 4.5))
    for index, engine in enumerate(engines):
        heights = []
        for workload in workloads:
            timing = found.get((workload, engine))
            heights.append(timing.ratio_to_best_dask if timing and timing.ratio_to_best_dask else 0)
        positions = [w + (index - (len(engines) - 1) / 2) * width for w in range(len(workloads))]
        axes.bar(positions, heights, width, label=engine)
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(workloads)), workloads, rotation=20, ha="right")
    axes.set_ylabel("median time / best Dask engine")
    axes.set_yscale("log")
    axes.set_title(f"wukong vs Dask — {facts['cores']} cores, {facts['workers']} workers, {facts['date']}")
    axes.legend(fontsize="small", ncols=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
