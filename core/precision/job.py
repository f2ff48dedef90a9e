"""An exploration on a worker thread: a page starts it, polls its progress, may stop it, then reads the result.

Nothing here knows about Streamlit (the Precision explorer page keeps an :class:`ExploreJob` in its session).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from core.errors import CoreError
from core.precision.explorer import Explorer, ExploreResult, ExploreSettings

if TYPE_CHECKING:
    from core.data import YoloDataset
    from core.model import ModelStore


class ExploreJob:
    """:class:`~.explore.Explorer` on a thread, started by the constructor. ``progress`` is the latest
    (fraction, message); when the thread ends, ``result`` holds the run (``result.stopped`` after
    :meth:`stop`: what was measured is kept) or ``error`` a one-line message. No exception leaves the thread."""

    def __init__(self, store: ModelStore, dataset: YoloDataset, settings: ExploreSettings) -> None:
        self.settings = settings
        self.model = store.source.name
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = (0.0, "starting")
        self._explorer = Explorer(store, dataset, settings, self._on_progress, self._stop.is_set)
        self.result: ExploreResult | None = None
        self.error = ""
        self.thread = threading.Thread(target=self._run, name="explore-job", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._explorer.run()
        except CoreError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown to the user; the app keeps running
            self.error = f"unexpected {type(exc).__name__}: {exc}"

    def _on_progress(self, fraction: float, message: str) -> None:
        with self._lock:
            self._progress = (fraction, message)

    @property
    def progress(self) -> tuple[float, str]:
        with self._lock:
            return self._progress

    @property
    def partial(self) -> ExploreResult:
        """What has been measured so far (drawn while the run goes on)."""
        return self._explorer.result

    def stop(self) -> None:
        """Stop before the next step (a candidate, a timing round); the steps done are kept."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()
