"""Progress reporting: core code calls ``progress(fraction, message)``; shells decide how to show it."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    return None


def scaled(progress: Progress, start: float, end: float) -> Progress:
    """A callback mapping 0..1 onto ``start..end`` of ``progress``: for steps inside a larger task."""

    def inner(fraction: float, message: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return inner


class TqdmProgress:
    """A tqdm bar on stderr driven by fractions (CLI).

    When stderr is not a terminal (logs, CI, a pipe) a bar would be invisible, so each new step is
    printed as one plain line instead: a message whose words change is always printed, one that only
    counts on ("12/100" -> "13/100") at most once every few seconds.
    """

    LOG_EVERY_S = 5.0

    def __init__(self, desc: str, enabled: bool = True) -> None:
        from tqdm import tqdm

        self._desc = desc
        self._log = enabled and not sys.stderr.isatty()
        self._last_words = ""
        self._last_time = 0.0
        self._bar: Any = tqdm(total=1000, desc=desc, leave=False, disable=not enabled or self._log, unit="‰")

    def __call__(self, fraction: float, message: str) -> None:
        if self._log:
            self._log_line(fraction, message)
            return
        self._bar.n = int(1000 * min(max(fraction, 0.0), 1.0))
        self._bar.set_postfix_str(message[:60], refresh=False)
        self._bar.refresh()

    def _log_line(self, fraction: float, message: str) -> None:
        words = re.sub(r"[\d.]+", "#", message)
        now = time.monotonic()
        if words == self._last_words and now - self._last_time < self.LOG_EVERY_S:
            return
        self._last_words, self._last_time = words, now
        print(f"{self._desc}: {100 * min(max(fraction, 0.0), 1.0):3.0f}% {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
