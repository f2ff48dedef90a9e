"""Live: frames from a camera (the browser's, over WebRTC, or an RTSP / HTTP stream) through 2-4 variants.

:class:`LiveSession` runs one frame at a time through every variant with the same engine the other pages use,
draws them side by side (as the video page does) and keeps live statistics: each variant's p50 / p95 over its
last :data:`WINDOW` frames, frames processed per second, and **dropped** frames. A live source never waits for
the engine: whoever feeds the session hands it only the newest frame and says how many it skipped since the last
one (:meth:`LiveSession.process`'s ``skipped``), so the view stays at most one frame behind the camera instead of
queueing into growing lag.

Recording (:meth:`LiveSession.start_recording`) writes the side-by-side view as browser-playable H.264, one
frame per processed frame at the time it arrived, with a per-frame latency CSV beside it (the video page's
columns). Nothing is written unless recording is on: frames stay in memory, and only the newest one is kept.
"""

from __future__ import annotations

import collections
import csv
import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError
from core.measure import LatencyStats
from core.report import MAX_TILES, annotate, hex_to_rgb, side_by_side, variant_colour
from core.runtime import PostParams
from core.tables import Column, Table
from core.video.pipeline import CSV_COLUMNS, PIPELINE_PRESET
from core.video.writer import H264Writer

if TYPE_CHECKING:
    from core.runtime import DetectionResult, Detector

WINDOW = 300  # frames each variant's live p50 / p95 covers (10 s at 30 fps)
FPS_WINDOW_S = 5.0  # processed frames per second over the last seconds
MAX_VIEW_WIDTH = 1280  # the side-by-side view is scaled down to this width: it is encoded again for the browser


@dataclass(frozen=True)
class VariantLive:
    variant: str
    frames: int  # frames this variant processed since the session (re)started
    latency: LatencyStats  # over the last WINDOW frames, ms end to end
    objects: int  # detections on the newest frame


@dataclass(frozen=True)
class LiveStatus:
    """What the page shows while live; a snapshot, safe to read from another thread."""

    variants: list[VariantLive]
    received: int  # frames the source delivered
    processed: int  # frames that went through every variant
    dropped: int  # frames skipped because the variants were still busy with an earlier one
    seconds: float  # since the first frame
    fps: float  # processed frames per second over the last FPS_WINDOW_S seconds
    recording: int | None  # frames recorded so far, None when not recording

    @property
    def engine_bound_fps(self) -> float:
        """What the variants could sustain one after the other: 1000 / the sum of their p50 (ms)."""
        total = sum(v.latency.p50 for v in self.variants if v.latency.count)
        return 1000.0 / total if total > 0 else 0.0

    @property
    def dropped_pct(self) -> float:
        return 100.0 * self.dropped / self.received if self.received else 0.0

    def table(self) -> Table:
        columns = (Column("variant"), Column("frames"), Column("p50 ms", 1), Column("p95 ms", 1),
                   Column("objects now"))  # fmt: skip
        rows = [(v.variant, v.frames, v.latency.p50, v.latency.p95, v.objects) for v in self.variants]
        notes = (
            f"ms per frame end to end (letterbox + inference + NMS), over each variant's last {WINDOW} frames; "
            "the variants run one after the other on each frame",
        )
        return Table(columns, rows, notes)

    def words(self) -> str:
        """'12.3 frames/s processed (the variants allow 13.0); 41 of 120 frames dropped (34 %)'."""
        bound = self.engine_bound_fps
        allow = f" (the variants one after the other allow {bound:.1f})" if bound else ""
        return (
            f"{self.fps:.1f} frames/s processed{allow}; {self.dropped} of {self.received} frames dropped "
            f"({self.dropped_pct:.0f} %) so the view stays at most one frame behind"
        )


@dataclass(frozen=True)
class Recording:
    """A finished recording: the side-by-side H.264 file and its per-frame latency CSV."""

    video: Path
    csv_text: str
    frames: int
    seconds: float


@dataclass
class _Recorder:
    writer: H264Writer
    size: tuple[int, int]  # (w, h) every recorded frame is scaled to: the first frame's
    started: float
    rows: list[tuple[object, ...]] = field(default_factory=list)


def _caption(variant: str, result: DetectionResult) -> str:
    n = len(result.detections)
    return f"{variant}  {result.timings.total:.1f} ms  {n} object{'s' if n != 1 else ''}"


def _fit_width(rgb: np.ndarray, width: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    if w <= width:
        return rgb
    return cv2.resize(rgb, (width, max(2, round(h * width / w))), interpolation=cv2.INTER_AREA)


class LiveSession:
    """Variants on live frames, one frame at a time; thread-safe (a source thread feeds, a page reads)."""

    MIN_VARIANTS, MAX_VARIANTS = 2, MAX_TILES

    def __init__(
        self, detectors: Sequence[Detector], params: PostParams | None = None, *, max_width: int = MAX_VIEW_WIDTH
    ) -> None:
        dets = list(detectors)
        names = [str(d.variant) for d in dets]
        if not self.MIN_VARIANTS <= len(dets) <= self.MAX_VARIANTS:
            raise InputError(f"live compares {self.MIN_VARIANTS} to {self.MAX_VARIANTS} variants, got {len(dets)}: "
                             f"{', '.join(names) or 'none'}")  # fmt: skip
        if len(set(names)) != len(names):
            raise InputError(f"each variant once, got {', '.join(names)}")
        self.detectors = dets
        self.variants = names
        self.params = params or PostParams()
        self.max_width = max_width
        self._lock = threading.Lock()
        self._busy = threading.Lock()  # one frame at a time
        self._latency = {v: collections.deque(maxlen=WINDOW) for v in names}
        self._frames = dict.fromkeys(names, 0)
        self._objects = dict.fromkeys(names, 0)
        self._done_at: collections.deque[float] = collections.deque()
        self._first: float | None = None
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.last_frame: np.ndarray | None = None  # the newest source frame processed (RGB)
        self.last_view: np.ndarray | None = None  # its side-by-side view
        self._recorder: _Recorder | None = None
        self._pending: Path | None = None  # where to record from the next processed frame on
        self.closed = False

    # ------------------------------------------------------------------ feeding

    def process(self, rgb: np.ndarray, skipped: int = 0) -> np.ndarray:
        """Run the newest frame through every variant; the side-by-side view. ``skipped``: frames the source
        delivered since the last call that nobody will process (they count as received and dropped)."""
        with self._busy:
            now = time.perf_counter()
            with self._lock:
                self._first = now if self._first is None else self._first
                self.received += 1 + skipped
                self.dropped += skipped
            results: dict[str, DetectionResult] = {v: d.detect(rgb, self.params) for v, d in
                                                   zip(self.variants, self.detectors, strict=True)}  # fmt: skip
            view = side_by_side(
                [annotate(rgb, r.detections) for r in results.values()],
                [_caption(v, r) for v, r in results.items()],
                None,
                [hex_to_rgb(variant_colour(v)) for v in results],
            )
            view = _fit_width(view, self.max_width)
            done = time.perf_counter()
            with self._lock:
                for v, r in results.items():
                    self._latency[v].append(r.timings.total)
                    self._frames[v] += 1
                    self._objects[v] = len(r.detections)
                self.processed += 1
                self._done_at.append(done)
                while self._done_at and done - self._done_at[0] > FPS_WINDOW_S:
                    self._done_at.popleft()
                self.last_frame, self.last_view = rgb, view
                if self._pending is not None and self._recorder is None:
                    self._arm_recorder(view, done)
                recorder = self._recorder
            if recorder is not None:
                self._record(recorder, view, results, done)
            return view

    def drop(self, count: int = 1) -> None:
        """Frames that arrived and were skipped without a later frame processed yet."""
        with self._lock:
            self.received += count
            self.dropped += count

    # ------------------------------------------------------------------ reading

    def status(self) -> LiveStatus:
        with self._lock:
            now = time.perf_counter()
            span = (self._done_at[-1] - self._done_at[0]) if len(self._done_at) > 1 else 0.0
            fps = (len(self._done_at) - 1) / span if span > 0 else 0.0
            if self._done_at and now - self._done_at[-1] > FPS_WINDOW_S:
                fps = 0.0  # nothing processed lately
            rows = [
                VariantLive(v, self._frames[v], LatencyStats.from_samples(list(self._latency[v])), self._objects[v])
                for v in self.variants
            ]
            return LiveStatus(
                rows,
                self.received,
                self.processed,
                self.dropped,
                now - self._first if self._first is not None else 0.0,
                fps,
                len(self._recorder.rows) // len(self.variants) if self._recorder else None,
            )

    # ------------------------------------------------------------------ recording

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def start_recording(self, path: str | Path) -> None:
        """Record from the next processed frame on (the view's size then: later frames are scaled to it)."""
        with self._lock:
            if self._recorder is None:
                self._pending = Path(path)

    def _record(self, recorder: _Recorder, view: np.ndarray, results: dict[str, DetectionResult],
                done: float) -> None:  # fmt: skip
        import cv2

        w, h = recorder.size
        if view.shape[1] != w or view.shape[0] != h:
            view = cv2.resize(view, (w, h), interpolation=cv2.INTER_AREA)
        seconds = done - recorder.started
        recorder.writer.write(view, time=seconds)
        index = recorder.writer.frames - 1
        for v, r in results.items():
            t = r.timings
            recorder.rows.append((index, v, round(t.preprocess, 3), round(t.inference, 3),
                                  round(t.postprocess, 3), round(t.total, 3), len(r.detections),
                                  round(seconds, 4)))  # fmt: skip

    def stop_recording(self) -> Recording | None:
        """Close the file; the recording, or None when no frame was recorded."""
        with self._busy, self._lock:
            self._pending = None
            recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        frames = recorder.writer.frames
        path = recorder.writer.close()
        if path is None or frames == 0:
            return None
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow(CSV_COLUMNS)
        out.writerows(recorder.rows)
        return Recording(path, buf.getvalue(), frames, float(recorder.rows[-1][-1]) if recorder.rows else 0.0)

    def close(self) -> Recording | None:
        """Stop feeding; a recording in progress is finished and returned."""
        self.closed = True
        return self.stop_recording()

    def _arm_recorder(self, view: np.ndarray, first: float) -> None:
        h, w = view.shape[:2]
        writer = H264Writer(self._pending, 30, w, h, preset=PIPELINE_PRESET)  # type: ignore[arg-type]
        self._recorder = _Recorder(writer, (w, h), first)
        self._pending = None
