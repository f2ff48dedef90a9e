"""A video run on a worker thread: a UI starts it, polls its latest frame and latencies, and may stop it.

Nothing here draws or knows about Streamlit; the Compare video page keeps a :class:`VideoJob` in its
session and redraws from :meth:`VideoJob.snapshot` while the job runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.measure import Job, TransferWatch
from core.video.pipeline import FrameUpdate, VideoRun, process_video

if TYPE_CHECKING:
    from core.runtime import Detector, PostParams


def _rss_mb() -> float:
    """This process's resident memory, MiB."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


class VideoJob(Job[VideoRun]):
    """:func:`~core.video.process_video` on a worker thread, started by the constructor.

    ``latest`` and ``latency`` grow as frames are processed (read both at once with :meth:`snapshot`);
    when the thread ends, ``result`` holds the run, or ``error`` a one-line message that starts with
    ``name``: no exception leaves the thread. :meth:`stop` ends the run at the next frame and keeps
    what was processed (``result.stopped``). ``rss_*_mb`` is the process's memory at the start, after
    :attr:`RSS_WARM_FRAMES` frames and at the end.
    """

    RSS_WARM_FRAMES = 30
    thread_name = "video-job"

    def __init__(
        self,
        path: Path,
        name: str,
        detectors: Sequence[Detector],
        params: PostParams,
        output: Path,
        max_frames: int | None,
    ) -> None:
        super().__init__()
        self.name = name
        self.thread.name = f"video-job-{name}"
        self.variants = [str(d.variant) for d in detectors]
        self._path, self._detectors, self._params = path, detectors, params
        self._output, self._max_frames = output, max_frames
        # variants on cluster nodes: where their transfer samples of this run start (detectors are shared)
        self._transfer = TransferWatch.start(detectors)
        self.latest: FrameUpdate | None = None  # the newest processed frame
        self.latency: dict[str, list[float]] = {v: [] for v in self.variants}  # end-to-end ms per frame
        self.rss_start_mb = _rss_mb()
        self.rss_warm_mb = 0.0  # after RSS_WARM_FRAMES: the runtimes' buffers are allocated by then
        self.rss_end_mb = 0.0
        self.start()

    def work(self) -> VideoRun:
        return process_video(
            self._path,
            self._detectors,
            self._params,
            self._output,
            self._max_frames,
            on_frame=self._on_frame,
            should_stop=self.should_stop,
            name=self.name,
        )

    def error_text(self, text: str) -> str:
        """Core's messages about a file start with its name; every other one is given it."""
        return text if text.startswith(f"{self.name}: ") else f"{self.name}: {text}"

    def finished(self) -> None:
        self.rss_end_mb = _rss_mb()
        self.rss_warm_mb = self.rss_warm_mb or self.rss_end_mb

    def _on_frame(self, update: FrameUpdate) -> None:
        if update.index + 1 == self.RSS_WARM_FRAMES:
            self.rss_warm_mb = _rss_mb()
        with self._lock:
            self.latest = update
            for v, ms in update.latency_ms.items():
                self.latency[v].append(ms)

    def snapshot(self) -> tuple[FrameUpdate | None, dict[str, list[float]]]:
        """The newest frame and a copy of the latencies so far, consistent with each other."""
        with self._lock:
            return self.latest, {v: list(s) for v, s in self.latency.items()}

    def transfer_ms(self) -> dict[str, list[float]]:
        """Per variant on a cluster node: its transfer per frame in this run (kept apart from its latency)."""
        return self._transfer.samples()

    def stop(self) -> None:
        """Ask the run to stop before its next frame; the frames processed so far are kept."""
        super().stop()
