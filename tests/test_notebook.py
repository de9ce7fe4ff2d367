"""A job run in a real Jupyter notebook (nbclient on an IPython kernel): the widget bar, the HTML report."""

from __future__ import annotations

import time

import dask
import nbformat
from nbclient import NotebookClient


def slow_increment(x):
    time.sleep(1.5)  # longer than the progress bar's one second of delay
    return x + 1


GRAPH = {"a": 41, "b": (slow_increment, "a")}

CELLS = [
    "import time, wukong\n"
    "client = wukong.Client(storage='ideal', compute_options={'mode': 'threads', 'workers': 2})",
    "def slow_increment(x):\n"
    "    time.sleep(1.5)\n"
    "    return x + 1\n"
    "client.get({'a': 41, 'b': (slow_increment, 'a')}, 'b')",
    "client.last_job",
    "client.close()",
]


def test_a_notebook_shows_the_widget_bar_and_the_html_report(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    in_folder = {"metadata": {"path": tmp_path}}
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources=in_folder).execute()
    _, run, report, _ = (cell.outputs for cell in notebook.cells)

    result = [output for output in run if output.output_type == "execute_result"]
    assert result[0].data["text/plain"] == repr(dask.get(GRAPH, "b"))
    widget = "application/vnd.jupyter.widget-view+json"
    assert any(widget in output.get("data", {}) for output in run), f"no progress widget in {run}"
    assert not any(output.get("name") == "stderr" for output in run)  # not the terminal's bar

    (shown,) = report
    html = shown.data["text/html"]
    assert html.startswith('<div class="wukong-report">') and 'id="stream"' in html
    assert "<body" not in html  # a fragment: the page's own styles stay the page's
