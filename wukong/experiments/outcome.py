"""What an experiment found: a table of seconds, the paper's direction of effect beside ours, a plot."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Claim:
    """One effect the paper reports, and whether this run shows it.

    Attributes:
        paper: the effect as the paper reports it ("decentralized beats centralized at 500 ms").
        ours: what this run measured, as a ratio or a figure.
        holds: whether this run shows the same direction.

    """

    paper: str
    ours: str
    holds: bool


@dataclass
class Outcome:
    """An experiment's measurements: ``seconds[row][column]``, and the claims they test.

    Attributes:
        name: the experiment's name (``wukong experiment NAME``).
        title: what was measured, for the table and the plot.
        rows: the row labels (workload settings), in order.
        columns: the column labels (engines or configurations), in order.
        seconds: median wall time of each cell.
        claims: the paper's effects beside ours.
        notes: anything else worth printing (targets, platform statistics).

    """

    name: str
    title: str
    rows: list[str]
    columns: list[str]
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The measurements and the claims as plain text."""
        width = max(len(row) for row in self.rows) + 2
        cell = max(14, *(len(column) + 2 for column in self.columns))
        lines = [self.title, "", " " * width + "".join(f"{column:>{cell}}" for column in self.columns)]
        for row in self.rows:
            cells = "".join(
                f"{self.seconds[row][column]:>{cell - 2}.3f} s"
                if column in self.seconds[row]
                else f"{'-':>{cell}}"
                for column in self.columns
            )
            lines.append(f"{row:<{width}}{cells}")
        if self.claims:
            lines += ["", "paper | ours | same direction"]
            lines += [f"{c.paper} | {c.ours} | {'yes' if c.holds else 'NO'}" for c in self.claims]
        lines += ["", *self.notes] if self.notes else []
        return "\n".join(lines)

    def plot(self, path: str | Path, log: bool = False) -> None:
        """Grouped bars: one group per row, one bar per column."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        width = 0.8 / len(self.columns)
        figure, axes = plt.subplots(figsize=(max(7, 1.8 * len(self.rows)), 4.5))
        for index, column in enumerate(self.columns):
            heights = [self.seconds[row].get(column, 0.0) for row in self.rows]
            offsets = [r + (index - (len(self.columns) - 1) / 2) * width for r in range(len(self.rows))]
            axes.bar(offsets, heights, width, label=column)
        axes.set_xticks(range(len(self.rows)), self.rows)
        axes.set_ylabel("seconds (median)")
        if log:
            axes.set_yscale("log")
        axes.set_title(self.title, fontsize="medium")
        axes.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)

    def save(self, directory: str | Path) -> list[Path]:
        """Write ``NAME.png`` and ``NAME.json`` into ``directory``; return their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        picture, data = directory / f"{self.name}.png", directory / f"{self.name}.json"
        self.plot(picture)
        data.write_text(json.dumps(asdict(self), indent=1))
        return [picture, data]


def ratio(slower: float, faster: float) -> str:
    """``slower / faster`` as text, e.g. ``2.31x``."""
    return f"{slower / faster:.2f}x" if faster > 0 else "n/a"
