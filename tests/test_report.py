"""``wukong report``: the page a person opens shows the job's summary and a bar for every executor.

The page is rendered by headless Chromium (Debian's ``chromium`` package, installed by ``.ci/run``):
once to read where each executor's row landed, once to take a screenshot, whose pixels are then
checked for a bar in every row.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import wukong
from wukong.cli import main
from wukong.report.stream import COLOURS
from wukong.testing import workloads

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]

# Appended to a copy of the page (the report itself has no script): writes each row's box into
# the DOM, which --dump-dom then prints.
MEASURE = """<script>
for (const row of document.querySelectorAll("g.executor")) {
  const box = row.getBoundingClientRect();
  row.setAttribute("data-box", [box.top + scrollY, box.bottom + scrollY, box.left, box.right].join(","));
}
</script>"""


WIDTH = 1200


@pytest.fixture(scope="module")
def saved_job(tmp_path_factory) -> tuple[Path, int, int]:
    """A tree reduction's report saved as JSON: (path, tasks, executors)."""
    graph, root = workloads.tree_reduction(64, leaf_tasks=True)
    with wukong.Client(timeout=120) as client:
        assert client.get(graph, root) == 64 * 63 // 2
        report = client.last_job
    path = tmp_path_factory.mktemp("report") / "job.json"
    report.save(path)
    return path, report.tasks, report.metrics.summary.executors


def _chromium(*arguments: str, cwd: Path) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Chromium is needed: apt-get install chromium (.ci/run installs it)"
    done = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={cwd / 'profile'}", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_html_report_shows_the_tasks_and_a_bar_per_executor(saved_job, tmp_path):
    job, tasks, executors = saved_job
    page = tmp_path / "report.html"
    assert main(["report", str(job), "-o", str(page)]) == 0

    measured = tmp_path / "measured.html"
    measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    # The same width for both renderings, so rows land where they were measured.
    dom = _chromium("--dump-dom", f"--window-size={WIDTH},1000", measured.as_uri(), cwd=tmp_path)
    text = re.sub(r"<[^>]+>", " ", dom)
    assert re.search(rf"\bTasks\s+{tasks}\b", text), "the summary does not show the number of tasks"
    boxes = [tuple(map(float, box.split(","))) for box in re.findall(r'data-box="([^"]+)"', dom)]
    assert len(boxes) == executors > 1

    height = int(max(bottom for _, bottom, _, _ in boxes)) + 40
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", f"--window-size={WIDTH},{height}", page.as_uri(), cwd=tmp_path)
    pixels = matplotlib.image.imread(shot)[:, :, :3]
    colours = np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in COLOURS.values()])
    for top, bottom, left, right in boxes:
        band = pixels[int(top) + 1 : int(bottom) - 1, int(left) : int(right)].reshape(-1, 1, 3)
        near = np.abs(band - colours[None, :, :]).max(axis=2) < 0.02
        assert near.any(), f"no bar drawn in the row at y={top:.0f}"


def test_png_report(saved_job, tmp_path):
    job, _, _ = saved_job
    picture = tmp_path / "report.png"
    assert main(["report", str(job), "-o", str(picture)]) == 0
    pixels = matplotlib.image.imread(picture)
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 1200
    # Some pixels carry the compute phase's colour: the bars were drawn.
    compute = np.array([int(COLOURS["compute"][i : i + 2], 16) / 255 for i in (1, 3, 5)])
    assert (np.abs(pixels[:, :, :3] - compute).max(axis=2) < 0.02).sum() > 100


def test_report_refuses_an_unknown_format(saved_job, tmp_path):
    job, _, _ = saved_job
    with pytest.raises(ValueError, match=r"use \.html or \.png"):
        main(["report", str(job), "-o", str(tmp_path / "report.pdf")])
