"""Progress reporting: core code calls ``progress(fraction, message)``; shells decide how to show it."""

from __future__ import annotations

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
    """A tqdm bar on stderr driven by fractions (CLI)."""

    def __init__(self, desc: str, enabled: bool = True) -> None:
        from tqdm import tqdm

        self._bar: Any = tqdm(total=1000, desc=desc, leave=False, disable=not enabled or None, unit="‰")

    def __call__(self, fraction: float, message: str) -> None:
        self._bar.n = int(1000 * min(max(fraction, 0.0), 1.0))
        self._bar.set_postfix_str(message[:60], refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
