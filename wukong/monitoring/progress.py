"""The client's progress bar: tasks done of the job's total, with rate and time left (tqdm).

In a terminal it is tqdm's text bar on standard error; in a Jupyter notebook, tqdm's widget (with
``ipywidgets`` installed; without it, the text bar in the cell's output).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Self

from tqdm import tqdm

_REFRESH_SECONDS = 0.2


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where output goes to a notebook's cells)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _bar_class() -> Any:
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401  (tqdm's notebook bar is an ipywidgets widget)
            from tqdm.notebook import tqdm as notebook_tqdm
        except ImportError:
            return tqdm
        return notebook_tqdm
    return tqdm


class Progress:
    """A bar that shows up once a job has run for a second.

    ``enabled=None`` shows it when standard error is a terminal or the client runs in a notebook.
    Executors report the tasks they ran when they end, so the bar moves in steps as executors end.
    """

    def __init__(self, total: int, enabled: bool | None, description: str = "wukong"):
        if enabled is None:
            enabled = sys.stderr.isatty() or in_notebook()
        self._bar = _bar_class()(
            total=total,
            desc=description,
            unit="task",
            delay=1.0,
            disable=not enabled,
            leave=False,
            dynamic_ncols=True,
        )
        self._shown = 0
        self._checked = 0.0

    @property
    def active(self) -> bool:
        """Whether the bar may show (so it is worth reading the count for it)."""
        return not self._bar.disable

    def due(self) -> bool:
        """Whether enough time passed since the last update to read the count again."""
        now = time.monotonic()
        if self.active and now - self._checked >= _REFRESH_SECONDS:
            self._checked = now
            return True
        return False

    def update(self, done: int) -> None:
        """``done`` tasks have run so far."""
        done = max(min(done, self._bar.total), self._shown)
        self._bar.update(done - self._shown)  # also when 0: the bar appears once its delay is up
        self._shown = done

    def close(self) -> None:
        """Remove the bar."""
        self._bar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
