"""An exploration on a worker thread: a page starts it, polls its progress, may stop it, then reads the result.

Nothing here knows about Streamlit (the Precision explorer page keeps an :class:`ExploreJob` in its session).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.measure import Job
from core.precision.explorer import Explorer, ExploreResult, ExploreSettings

if TYPE_CHECKING:
    from core.data import YoloDataset
    from core.model import ModelStore


class ExploreJob(Job[ExploreResult]):
    """:class:`~.explore.Explorer` on a thread, started by the constructor. ``progress`` is the latest
    (fraction, message); when the thread ends, ``result`` holds the run (``result.stopped`` after
    :meth:`stop`: what was measured is kept) or ``error`` a one-line message. No exception leaves the thread."""

    thread_name = "explore-job"

    def __init__(self, store: ModelStore, dataset: YoloDataset, settings: ExploreSettings) -> None:
        super().__init__()
        self.settings = settings
        self.model = store.source.name
        self._explorer = Explorer(store, dataset, settings, self.on_progress, self.should_stop)
        self.start()

    def work(self) -> ExploreResult:
        return self._explorer.run()

    @property
    def partial(self) -> ExploreResult:
        """What has been measured so far (drawn while the run goes on)."""
        return self._explorer.result

    def stop(self) -> None:
        """Stop before the next step (a candidate, a timing round); the steps done are kept."""
        super().stop()
