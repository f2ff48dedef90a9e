"""Run variants side by side on a video: :func:`process_video`, its per-frame updates and its results.

:func:`process_video` is a bounded pipeline of three threads::

    decode thread --(queue, DECODE_QUEUE frames)--> calling thread: every detector on the frame, on_frame
                  --(queue, ENCODE_QUEUE updates)--> encode thread: draw side by side, scale if needed, H.264

Decoding, drawing and encoding overlap with inference (FFmpeg, OpenCV and ONNX Runtime release the
GIL); the calling thread does nothing but inference, so it runs at the engine's pace. Memory stays
flat: the queues are bounded and no frame is kept. ``on_frame`` runs on the calling thread.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from core.errors import InputError, RuntimeUnavailableError
from core.measure import LatencyStats
from core.progress import Progress, no_progress
from core.report import MAX_TILES, annotate, hex_to_rgb, side_by_side, variant_colour
from core.results import Result
from core.runtime import PostParams
from core.tables import Column, Table
from core.video.decode import VideoInfo, _decode_timed, _label, probe
from core.video.writer import H264Writer

if TYPE_CHECKING:
    from core.runtime import DetectionResult, Detector, StageTimings

MAX_OUTPUT_SIZE = (3840, 2160)  # the composed video is scaled down to fit: browsers' H.264 decoders stop near 4K
MAX_VARIANTS = MAX_TILES  # as many as side_by_side lays out
# x264 preset of process_video's output. At 1280x382 (two 360p tiles) superfast costs ~8 ms of CPU a
# frame against ~16 ms for veryfast, for files ~1.4x larger: CPU spent encoding is taken from inference.
PIPELINE_PRESET = "superfast"
DECODE_QUEUE = 4  # frames decoded ahead of inference
ENCODE_QUEUE = 4  # processed frames waiting to be drawn and encoded
# Niceness of the decode and encode threads (see _background_priority). Not SCHED_IDLE: a thread that can
# only run on an idle core may hold the GIL while another session's inference keeps both cores busy.
BACKGROUND_NICE = 19


def _fit(size: tuple[int, int], limit: tuple[int, int] = MAX_OUTPUT_SIZE) -> tuple[int, int]:
    """(w, h) scaled down to fit ``limit``, aspect kept."""
    w, h = size
    s = min(1.0, limit[0] / w, limit[1] / h)
    return (w, h) if s >= 1.0 else (max(2, round(w * s)), max(2, round(h * s)))


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class FrameUpdate:
    """One processed frame, as ``process_video`` hands it to ``on_frame``.

    The side-by-side picture is drawn on first access of :attr:`image` and kept: by the encoder thread
    when a video is written, else by whoever asks (a UI that shows one frame in ten draws one in ten).
    Either way the drawing stays off the inference thread.
    """

    index: int  # 0-based frame number
    total: int  # frames expected (the container's count or an estimate; may be off for damaged files)
    results: dict[str, DetectionResult]  # variant -> detections and stage timings
    elapsed: float  # seconds since processing started
    frame: np.ndarray = field(repr=False)  # the decoded, upright picture
    grid: bool | None = field(default=None, repr=False)  # side_by_side's layout choice
    lost: dict[str, str] = field(default_factory=dict)  # variants whose cluster node went away: why
    time: float = 0.0  # when the source shows this frame: seconds from its first frame (its own timestamp)
    duration: float = 0.0  # how long the source shows it, seconds (0: one frame at the average rate)

    @property
    def image(self) -> np.ndarray:
        """The annotated variants side by side, each under a caption with its latency and count."""
        cached: np.ndarray | None = self.__dict__.get("_image")
        if cached is None:  # two threads may both draw it once; the result is the same
            gone = (self.frame // 3).astype(np.uint8)  # a lost variant's tile: the frame, dimmed, no boxes
            cached = side_by_side(
                [annotate(self.frame, r.detections) for r in self.results.values()] + [gone for _ in self.lost],
                [_caption(v, r) for v, r in self.results.items()] + [f"{v}  LOST (node gone)" for v in self.lost],
                self.grid,
                [hex_to_rgb(variant_colour(v)) for v in [*self.results, *self.lost]],
            )
            object.__setattr__(self, "_image", cached)  # frozen dataclass: a cache, not a field
        return cached

    @property
    def counts(self) -> dict[str, int]:
        return {v: len(r.detections) for v, r in self.results.items()}

    @property
    def latency_ms(self) -> dict[str, float]:
        return {v: r.timings.total for v, r in self.results.items()}

    @property
    def fps(self) -> float:
        """Frames processed per second so far."""
        return (self.index + 1) / self.elapsed if self.elapsed > 0 else 0.0


CSV_COLUMNS = (
    "frame",
    "variant",
    "preprocess_ms",
    "inference_ms",
    "postprocess_ms",
    "total_ms",
    "detections",
    "time_s",  # the frame's time in the source, seconds from its first frame (uneven in a variable-rate clip)
)


def latency_table(latency_ms: dict[str, list[float]]) -> Table:
    """Per variant: frames, p50 / p95 end-to-end ms per frame, and the frames per second the engine alone sustains."""
    columns = (Column("variant"), Column("frames"), Column("p50 ms", 2), Column("p95 ms", 2), Column("FPS (engine)", 2))
    rows = []
    for v, samples in latency_ms.items():
        s = LatencyStats.from_samples(samples)
        rows.append((v, s.count, s.p50, s.p95, 1000.0 / s.p50 if s.p50 > 0 else 0.0))
    notes = (
        "ms per frame, end to end (letterbox + inference + NMS); FPS (engine): 1000 / p50 ms, what this variant "
        "alone would sustain (the same statistic as on Benchmark)",
    )
    return Table(columns, rows, notes)


@dataclass
class VideoRun(Result):
    """The outcome of :func:`process_video`."""

    kind = "video"
    source: Path
    info: VideoInfo
    variants: list[str]
    frames: int
    wall_seconds: float
    stopped: bool  # should_stop() ended it early
    output: Path | None  # the side-by-side MP4, if one was asked for and a frame was processed
    timings: dict[str, list[StageTimings]] = field(repr=False)  # per variant, one per frame
    counts: dict[str, list[int]] = field(repr=False)  # detections per frame, per variant
    damage: str | None = None  # the file was cut off or damaged: processing ended there
    lost: dict[str, str] = field(default_factory=dict)  # variants whose cluster node went away mid-run: why
    frame_times: list[float] = field(default_factory=list, repr=False)  # each frame's time in the source, seconds
    shape: str = "square"  # the input shape policy (core.variants.Shape)
    input_hw: tuple[int, int] = (0, 0)  # the network input every frame ran at: one shape per clip

    @property
    def fps_processed(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def latency_ms(self) -> dict[str, list[float]]:
        """End-to-end (letterbox + inference + NMS) milliseconds per frame, per variant."""
        return {v: [t.total for t in ts] for v, ts in self.timings.items()}

    @property
    def stats(self) -> dict[str, LatencyStats]:
        return {v: LatencyStats.from_samples(s) for v, s in self.latency_ms.items()}

    def payload(self) -> dict[str, Any]:
        """JSON-ready summary (what ``python -m core video --json`` prints)."""
        stats = self.stats
        return {
            "source": str(self.source),
            "shape": self.shape,
            "input_hw": list(self.input_hw),
            "frames": self.frames,
            "wall_seconds": round(self.wall_seconds, 3),
            "fps_processed": round(self.fps_processed, 3),
            "stopped": self.stopped,
            "damage": self.damage,
            "lost": self.lost,
            "output": str(self.output) if self.output else None,
            "variants": [
                {
                    "variant": v,
                    "latency_ms": stats[v].to_dict(),
                    "detections_per_frame": round(float(np.mean(self.counts[v])), 3) if self.counts[v] else 0.0,
                }
                for v in self.variants
            ],
        }

    def table(self) -> Table:
        table = latency_table(self.latency_ms)
        return replace(table, notes=(*table.notes, *self.lost.values())) if self.lost else table

    def text(self) -> str:
        where = f"{self.shape} {self.input_hw[1]}x{self.input_hw[0]}"
        return (
            f"{self.source.name}: {self.frames} frames ({where}) at {self.fps_processed:.1f} fps -> {self.output}\n"
            + (self.table().to_text())
        )

    def write_csv(self, dest: str | Path | TextIO) -> None:
        """Per-frame latencies: one row per frame and variant, columns :data:`CSV_COLUMNS` (milliseconds; the
        frame's time in the source in seconds)."""
        if isinstance(dest, str | Path):
            with open(dest, "w", newline="", encoding="utf-8") as fp:
                self.write_csv(fp)
            return
        w = csv.writer(dest, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for i in range(self.frames):
            for v in self.variants:
                if i >= len(self.timings[v]):  # lost with its node before this frame
                    continue
                t = self.timings[v][i]
                ms = (f"{x:.3f}" for x in (t.preprocess, t.inference, t.postprocess, t.total))
                when = f"{self.frame_times[i]:.6f}" if i < len(self.frame_times) else ""
                w.writerow([i, v, *ms, self.counts[v][i], when])

    def csv_text(self) -> str:
        buf = io.StringIO()
        self.write_csv(buf)
        return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# the pipeline

_END = object()  # end of stream (the decoder is done, or the encoder should finish the file)
_ABORT = object()  # the encoder should discard the file


class _Failure:
    """An exception raised in a worker thread, carried to the calling thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue[Any], item: object, cancelled: Callable[[], bool]) -> bool:
    """Put, waiting while the queue is full, unless ``cancelled()`` becomes true. True if put."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if cancelled():
                return False


def _background_priority() -> None:
    """Lower the calling thread's CPU priority (and of the FFmpeg threads it starts, which inherit it).

    Decoding and encoding share the cores with the inference threads. ONNX Runtime splits each operator
    evenly over its threads, so a thread that loses its core to the encoder delays the whole operator;
    at nice 19 the encoder runs mostly in the gaps inference leaves (NMS, letterbox, the
    Python between calls). The bounded queues keep it from falling behind: when they fill, inference
    waits and the encoder gets the cores.
    """
    with contextlib.suppress(AttributeError, OSError):  # per thread on Linux; elsewhere left as it is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def _decode_worker(
    path: Path, label: str, max_frames: int | None, out: queue.Queue[Any], stop: threading.Event, damage: list[str]
) -> None:
    _background_priority()
    try:
        for timed in _decode_timed(path, label, max_frames, damage):  # (picture, time, duration)
            if stop.is_set() or not _put(out, timed, stop.is_set):
                return
        _put(out, _END, stop.is_set)
    except BaseException as exc:  # handed to the calling thread, which raises it
        _put(out, _Failure(exc), stop.is_set)


class _Encoder(threading.Thread):
    """Draws and encodes FrameUpdates; owns the writer, created at the first frame (its size is known then)."""

    def __init__(self, output: Path, rate: Fraction, preset: str) -> None:
        super().__init__(name="video-encode", daemon=True)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=ENCODE_QUEUE)
        self.output, self.rate, self.preset = output, rate, preset
        self.error: BaseException | None = None
        self.result: Path | None = None

    def run(self) -> None:
        import cv2

        _background_priority()
        writer: H264Writer | None = None
        size: tuple[int, int] | None = None
        try:
            while True:
                item = self.queue.get()
                if item is _END or item is _ABORT:
                    break
                image = item.image
                if writer is None:
                    size = _fit((image.shape[1], image.shape[0]))
                    writer = H264Writer(self.output, self.rate, *size, preset=self.preset)
                if size != (image.shape[1], image.shape[0]):
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                writer.write(image, item.time, item.duration or None)
            if writer is not None:
                if item is _END:
                    self.result = writer.close()
                else:
                    writer.abort()
        except BaseException as exc:
            self.error = exc
            if writer is not None:
                writer.abort()
            # Keep draining so the producer never blocks on a full queue after a failure.
            while True:
                item = self.queue.get()
                if item is _END or item is _ABORT:
                    break


def _caption(variant: str, result: DetectionResult) -> str:
    n = len(result.detections)
    return f"{variant}  {result.timings.total:.1f} ms  {n} object{'s' if n != 1 else ''}"


def process_video(
    path: str | Path,
    detectors: Sequence[Detector],
    params: PostParams | None = None,
    output: str | Path | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[FrameUpdate], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
    *,
    name: str | None = None,
    grid: bool | None = None,
    preset: str = PIPELINE_PRESET,
) -> VideoRun:
    """Run every frame through every detector; optionally encode the annotated side-by-side video.

    ``should_stop()`` is polled before each frame: when it returns True, the frames processed so far are
    encoded into a valid, playable ``output`` and the run returns with ``stopped=True``. ``on_frame``
    and ``progress`` are called on the calling thread after each frame. ``name`` replaces the file name
    in messages; ``grid`` chooses the 2x2 layout for 4 variants (default: yes); ``preset`` is x264's.
    """
    started = time.perf_counter()
    src = Path(path)
    label = _label(src, name)
    dets = list(detectors)
    variants = [str(d.variant) for d in dets]
    if not dets:
        raise InputError("choose at least one variant to run on the video")
    if len(dets) > MAX_VARIANTS:
        raise InputError(f"at most {MAX_VARIANTS} variants side by side, got {len(dets)}: {', '.join(variants)}")
    if len(set(variants)) != len(variants):
        raise InputError(f"each variant once, got {', '.join(variants)}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max frames must be at least 1, got {max_frames}")
    out_path = Path(output) if output is not None else None
    if out_path is not None and out_path.exists() and out_path.resolve() == src.resolve():
        raise InputError(f"{label}: the output would overwrite the input video; choose another output path")
    info = probe(src, name)
    params = params or PostParams()
    report = progress or no_progress
    total = min(info.frame_count, max_frames) if max_frames else info.frame_count
    clip_hw = dets[0].hw_for((info.height, info.width))  # one input shape per clip (every frame is this size)

    stop = threading.Event()
    frames_q: queue.Queue[Any] = queue.Queue(maxsize=DECODE_QUEUE)
    damage: list[str] = []
    decoder = threading.Thread(
        target=_decode_worker, args=(src, label, max_frames, frames_q, stop, damage), name="video-decode", daemon=True
    )
    encoder = _Encoder(out_path, info.frame_rate, preset) if out_path is not None else None
    timings: dict[str, list[StageTimings]] = {v: [] for v in variants}
    counts: dict[str, list[int]] = {v: [] for v in variants}
    lost: dict[str, str] = {}
    frame_times: list[float] = []
    index = 0
    stopped = False
    finished = False
    try:
        decoder.start()
        if encoder is not None:
            encoder.start()
        while True:
            if should_stop is not None and should_stop():
                stopped = True
                break
            item = frames_q.get()
            if item is _END:
                break
            if isinstance(item, _Failure):
                raise item.exc
            picture, when, duration = item
            results: dict[str, DetectionResult] = {}
            for v, d in zip(variants, dets, strict=True):
                if v in lost:
                    continue
                try:
                    r = d.detect(picture, params)
                except RuntimeUnavailableError as exc:
                    # a variant on a cluster node that went away: say which, keep its frames, go on with the others
                    if d.node is None or len(lost) + 1 == len(variants):
                        raise
                    lost[v] = f"{v}: lost at frame {index + 1} ({exc}); its figures cover the frames before"
                    continue
                results[v] = r
                timings[v].append(r.timings)
                counts[v].append(len(r.detections))
            frame_times.append(float(when))
            update = FrameUpdate(
                index,
                max(total, index + 1),
                results,
                time.perf_counter() - started,
                picture,
                grid,
                dict(lost),
                float(when),
                float(duration),
            )
            if encoder is not None:
                if encoder.error is not None:
                    raise encoder.error
                _put(encoder.queue, update, lambda: encoder.error is not None)
            if on_frame is not None:
                on_frame(update)
            index += 1
            report(min(index / total, 1.0) if total else 0.0, f"frame {index}/{max(total, index)}")
        finished = True
    finally:
        stop.set()  # the decoder stops at its next frame
        with contextlib.suppress(queue.Empty):  # unblock a decoder waiting on a full queue
            while True:
                frames_q.get_nowait()
        if encoder is not None:
            # On an exception the encoder discards the file; otherwise it flushes and renames it.
            encoder.queue.put(_END if finished else _ABORT)
            encoder.join()
        decoder.join(timeout=5)
    if encoder is not None and encoder.error is not None:
        raise encoder.error
    expected = min(info.frame_count, max_frames) if max_frames else info.frame_count
    # A file cut off after its index (MP4 with the index first) ends without an error; the container's
    # count says so. A frame or two less is normal (edit lists drop frames), so only a clear gap counts.
    if not stopped and not damage and not info.frame_count_estimated and expected - index > max(2, expected // 100):
        damage.append(f"{label}: ended after {index} of {expected} frames (the file is cut off or damaged)")
    return VideoRun(
        source=src,
        info=info,
        variants=variants,
        frames=index,
        wall_seconds=time.perf_counter() - started,
        stopped=stopped,
        output=encoder.result if encoder is not None else None,
        timings=timings,
        counts=counts,
        damage=damage[0] if damage else None,
        lost=lost,
        frame_times=frame_times,
        shape=dets[0].shape.value,
        input_hw=clip_hw,
    )
