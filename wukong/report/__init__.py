"""Turn a saved job report (``JobReport.save``) into a page or a picture: ``wukong report``."""

from __future__ import annotations

from pathlib import Path

from wukong.monitoring.report import JobReport
from wukong.report.html import render_html
from wukong.report.png import render_png

__all__ = ["render_html", "render_png", "write_report"]


def write_report(report: JobReport, path: str | Path) -> None:
    """Write ``report`` as HTML or PNG, by the suffix of ``path``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        path.write_text(render_html(report))
    elif suffix == ".png":
        render_png(report, path)
    else:
        raise ValueError(f"cannot write a report as {suffix or 'a file without a suffix'}: use .html or .png")
