"""The client's progress bar: tasks done of the job's total, with rate and time left (tqdm)."""

from __future__ import annotations

import time
from typing import Self

from tqdm import tqdm

_REFRESH_SECONDS = 0.2


class Progress:
    """A bar on standard error that shows up once a job has run for a second.

    ``enabled=None`` shows it only when standard error is a terminal. Executors report the tasks
    they ran when they end, so the bar moves in steps as executors end.
    """

    def __init__(self, total: int, enabled: bool | None, description: str = "wukong"):
        self._bar = tqdm(
            total=total,
            desc=description,
            unit="task",
            delay=1.0,
            disable=None if enabled is None else not enabled,
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
