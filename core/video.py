"""Videos: probe, decode upright RGB frames, run variants side by side, encode browser-playable H.264.

Decoding and encoding use PyAV (FFmpeg). OpenCV's pip wheels cannot write H.264, and H.264 in an MP4
with ``+faststart`` is what every browser plays and streams.

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
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from .errors import InputError
from .metrics import LatencyStats
from .processing import PostParams
from .progress import Progress, no_progress

if TYPE_CHECKING:
    from .detections import DetectionResult, StageTimings
    from .detector import Detector

VIDEO_TYPES = ("mp4", "mov", "avi", "mkv", "webm")
# FFmpeg demuxers allowed to open a user's file (names match any alias: "mov" is the mp4/mov/m4v demuxer,
# "matroska" also reads webm). Everything else is refused before it parses anything: playlists (hls,
# concat) that would make FFmpeg open other files or URLs, image sequences, raw streams.
_DEMUXERS = "mov,matroska,avi"
_OPEN_OPTIONS = {"format_whitelist": _DEMUXERS, "protocol_whitelist": "file"}
MAX_VIDEO_PIXELS = 8192 * 4320  # per frame; larger (8K+) videos are refused before decoding
MAX_OUTPUT_SIZE = (3840, 2160)  # the composed video is scaled down to fit: browsers' H.264 decoders stop near 4K
MAX_VARIANTS = 4
# x264 preset of process_video's output. At 1280x382 (two 360p tiles) superfast costs ~8 ms of CPU a
# frame against ~16 ms for veryfast, for files ~1.4x larger: CPU spent encoding is taken from inference.
PIPELINE_PRESET = "superfast"
DECODE_QUEUE = 4  # frames decoded ahead of inference
ENCODE_QUEUE = 4  # processed frames waiting to be drawn and encoded
# Niceness of the decode and encode threads (see _background_priority). Not SCHED_IDLE: a thread that can
# only run on an idle core may hold the GIL while another session's inference keeps both cores busy.
BACKGROUND_NICE = 19
# Consecutive packets that fail to decode before a stream is treated as damaged beyond that point.
_MAX_BAD_PACKETS = 25


def _accepted() -> str:
    return f"accepted: {', '.join(VIDEO_TYPES)}"


# ---------------------------------------------------------------------------------------------
# probing and decoding


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds. ``width``/``height`` are the upright picture's, as players show it."""

    path: Path
    width: int
    height: int
    coded_width: int  # as stored, before rotation
    coded_height: int
    fps: float  # average frame rate (frames / duration for variable frame rate)
    frame_rate: Fraction  # the same, exact, for encoders
    frame_count: int
    frame_count_estimated: bool  # the container does not say; duration x fps
    duration: float  # seconds
    rotation: int  # 0, 90, 180 or 270: counter-clockwise turn applied to the stored picture for display
    has_audio: bool
    codec: str
    container: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 3),
            "frames": self.frame_count,
            "frames_estimated": self.frame_count_estimated,
            "duration_s": round(self.duration, 3),
            "rotation": self.rotation,
            "has_audio": self.has_audio,
            "codec": self.codec,
            "container": self.container,
        }


def _label(path: Path, name: str | None) -> str:
    return name or path.name


def _open(path: Path, label: str) -> tuple[Any, Any]:
    """Open a user's video with the demuxer whitelist; return (container, video stream) or raise InputError."""
    import av

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{label}: cannot open ({exc.strerror or exc})") from exc
    if path.is_dir():
        raise InputError(f"{label}: is a folder, not a video file ({_accepted()})")
    if size == 0:
        raise InputError(f"{label}: empty file (0 bytes; {_accepted()})")
    try:
        container = av.open(str(path), options=_OPEN_OPTIONS)
    except av.error.FFmpegError as exc:
        with open(path, "rb") as fp:
            head = fp.read(12)
        if head[4:8] == b"ftyp":  # an MP4/MOV whose index (moov box) is missing, usually a cut-off download
            raise InputError(
                f"{label}: damaged or truncated MP4/MOV, its index cannot be read ({_accepted()})"
            ) from exc
        raise InputError(f"{label}: not a video file in an accepted format ({_accepted()})") from exc
    try:
        # Cover art in audio files is a one-picture "video" stream; it is not a video.
        streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            raise InputError(f"{label}: has no video stream (audio only?) ({_accepted()})")
        stream = streams[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        if w * h > MAX_VIDEO_PIXELS:
            raise InputError(
                f"{label}: {w}x{h} frames are over the limit of {MAX_VIDEO_PIXELS / 1e6:.0f} megapixels per frame"
            )
    except BaseException:
        container.close()
        raise
    return container, stream


def _rotation_k(frame: Any) -> int:
    """Quarter turns counter-clockwise (np.rot90's k) that make a decoded frame upright.

    FFmpeg's display matrix angle is the counter-clockwise rotation to apply for display (a phone held
    upright records -90: turn clockwise). Angles that are not multiples of 90 are rounded.
    """
    try:
        angle = float(frame.rotation or 0.0)
    except (TypeError, ValueError):  # a malformed display matrix: show the picture as stored
        return 0
    return round(angle / 90.0) % 4


def _to_rgb(frame: Any) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    k = _rotation_k(frame)
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _av_frames(container: Any, stream: Any, label: str, damage: list[str]) -> Iterator[Any]:
    """Decoded frames of ``stream``. Where the container is cut off or damaged, the decoder is flushed
    (it holds frames back for reordering) and the stream ends, with a note in ``damage``."""
    import av

    packets = container.demux(stream)
    count = 0
    bad = 0
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return  # demux() ends with an empty packet per stream, which flushed the decoder
        except av.error.FFmpegError:
            # FFmpeg's own text ("[Errno 1094995529] Invalid data ...") means nothing to a user: left out
            damage.append(f"{label}: the file is cut off or damaged after frame {count}")
            packet = None  # flush what the decoder holds
        try:
            frames = stream.decode(packet)
        except av.error.FFmpegError:
            bad += 1
            if packet is None or bad > _MAX_BAD_PACKETS:
                if packet is not None:
                    damage.append(f"{label}: undecodable data after frame {count} (the file is damaged)")
                return
            continue  # one bad packet (a damaged frame): carry on with the next ones
        bad = 0
        for frame in frames:
            yield frame
            count += 1
        if packet is None:
            return


def _decode(path: Path, label: str, max_frames: int | None, damage: list[str]) -> Iterator[np.ndarray]:
    """Upright RGB frames; a cut-off or damaged file ends early (see _av_frames), InputError if no frame decodes."""
    container, stream = _open(path, label)
    count = 0
    try:
        # Slice threads only: frame threading buffers frames per thread (memory, latency) and competes
        # with inference for the same cores.
        stream.thread_type = "SLICE"
        for frame in _av_frames(container, stream, label, damage):
            if max_frames is not None and count >= max_frames:
                break
            yield _to_rgb(frame)
            count += 1
    finally:
        container.close()
    if count == 0:
        raise InputError(f"{label}: no frame could be decoded, the file is damaged ({_accepted()})")


def iter_frames(path: str | Path, max_frames: int | None = None, name: str | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 HxWx3 frames as a player shows them (rotation metadata applied).

    A damaged or truncated file yields the frames that decode and stops; InputError only if none does.
    ``name`` is used in messages instead of the file name (e.g. the name of an uploaded file).
    """
    path = Path(path)
    return _decode(path, _label(path, name), max_frames, [])


def probe(path: str | Path, name: str | None = None) -> VideoInfo:
    """Read a video's facts and decode its first frame (to prove it decodes and to read its rotation)."""
    import av

    path = Path(path)
    label = _label(path, name)
    container, stream = _open(path, label)
    try:
        damage: list[str] = []
        first = next(_av_frames(container, stream, label, damage), None)
        if first is None:
            raise InputError(f"{label}: no frame could be decoded, the file is damaged ({_accepted()})")
        k = _rotation_k(first)

        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        rate = _frame_rate(stream, duration)
        frames = int(stream.frames or 0)
        estimated = frames <= 0
        if estimated:
            frames = max(1, round(duration * float(rate))) if duration > 0 else 0
        cw, ch = stream.codec_context.width, stream.codec_context.height
        w, h = (ch, cw) if k % 2 else (cw, ch)
        return VideoInfo(
            path=path,
            width=w,
            height=h,
            coded_width=cw,
            coded_height=ch,
            fps=float(rate),
            frame_rate=rate,
            frame_count=frames,
            frame_count_estimated=estimated,
            duration=duration,
            rotation=(k * 90) % 360,
            has_audio=len(container.streams.audio) > 0,
            codec=stream.codec_context.name,
            container=container.format.name,
        )
    finally:
        container.close()


def _frame_rate(stream: Any, duration: float) -> Fraction:
    """Average frame rate: the container's (frames / duration, right for variable frame rate), else guesses."""
    for candidate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if candidate and 0 < float(candidate) <= 1000:
            return Fraction(candidate).limit_denominator(1001)
    if stream.frames and duration > 0:
        return Fraction(stream.frames / duration).limit_denominator(1001)
    return Fraction(25)  # nothing says: the most common broadcast rate, only used to time the output


# ---------------------------------------------------------------------------------------------
# encoding


class H264Writer:
    """Write RGB frames as a browser-playable MP4 (H.264, yuv420p, ``+faststart``), atomically.

    Frames go to a temporary file beside ``path`` that is renamed onto ``path`` by :meth:`close`, so a
    crash never leaves a half-written file under the final name. Odd sizes are padded to even
    (yuv420p needs even), repeating the last row/column. Used as a context manager, an exception in
    the block discards the file; a normal exit keeps every frame written so far.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        width: int,
        height: int,
        *,
        crf: int = 23,
        preset: str = "veryfast",
        threads: int = 1,
    ) -> None:
        import av

        if width < 1 or height < 1:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        if rate <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.width, self.height = width, height
        self.frames = 0
        self._result: Path | None = None
        self._pad = (height % 2, width % 2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        # format= because the temporary name has no .mp4 suffix to choose the muxer by.
        self._container: Any = av.open(str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"})
        try:
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = width + self._pad[1], height + self._pad[0]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            # One encoder thread: the encode thread already overlaps with inference, more threads only
            # take cores from it. x264 frame threads would also add frames of delay.
            stream.codec_context.thread_count = threads
            self._stream = stream
        except BaseException:
            self.abort()
            raise

    def write(self, rgb: np.ndarray) -> None:
        import av

        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected a {self.height}x{self.width}x3 uint8 frame, got {rgb.shape} {rgb.dtype}")
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> Path | None:
        """Flush, finish the MP4 and move it onto ``path``. Returns the path, or None if no frame was written."""
        if self._container is None:  # closed or aborted already
            return self._result
        if self.frames == 0:
            self.abort()
            return None
        try:
            self._container.mux(self._stream.encode(None))
            self._container.close()  # writes the index and, with +faststart, moves it to the front
        except BaseException:
            self.abort()
            raise
        self._container = None
        os.replace(self._tmp, self.path)
        self._result = self.path
        return self.path

    def abort(self) -> None:
        """Discard everything: nothing is left at ``path`` (an older file there is untouched)."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ---------------------------------------------------------------------------------------------
# composition


def _caption_height(tile_h: int) -> int:
    return max(18, round(tile_h * 0.06))


def _draw_caption(bar: np.ndarray, text: str) -> None:
    import cv2

    h, w = bar.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = h / 34  # Hershey simplex is ~22 px tall at scale 1: leaves a margin above and below
    thickness = max(1, round(h / 22))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    if tw > w - 8:  # a long label on a narrow tile: shrink rather than cut it
        scale *= (w - 8) / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    cv2.putText(bar, text, (4, (h + th) // 2), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def side_by_side(frames: Sequence[np.ndarray], labels: Sequence[str], grid: bool | None = None) -> np.ndarray:
    """Tiles of equally sized RGB frames, each under a dark caption bar with its label.

    One row for 1-3 frames; for 4, a 2x2 grid unless ``grid=False`` (``grid=None`` chooses).
    """
    import cv2  # noqa: F401  (fail here, not half-way through drawing, if OpenCV is missing)

    if not frames or len(frames) != len(labels):
        raise ValueError(f"need one label per frame, got {len(frames)} frames and {len(labels)} labels")
    if len(frames) > MAX_VARIANTS:
        raise ValueError(f"at most {MAX_VARIANTS} frames side by side, got {len(frames)}")
    h, w = frames[0].shape[:2]
    if any(f.shape != frames[0].shape for f in frames):
        raise ValueError(f"frames differ in size: {[f.shape for f in frames]}")
    use_grid = len(frames) == 4 if grid is None else grid and len(frames) == 4
    cols = 2 if use_grid else len(frames)
    rows = 2 if use_grid else 1
    bar = _caption_height(h)
    tile_h = h + bar
    canvas = np.empty((rows * tile_h, cols * w, 3), dtype=np.uint8)
    for i, (frame, label) in enumerate(zip(frames, labels, strict=True)):
        r, c = divmod(i, cols)
        y, x = r * tile_h, c * w
        canvas[y : y + bar, x : x + w] = (32, 32, 32)
        _draw_caption(canvas[y : y + bar, x : x + w], label)
        canvas[y + bar : y + tile_h, x : x + w] = frame
    return canvas


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

    @property
    def image(self) -> np.ndarray:
        """The annotated variants side by side, each under a caption with its latency and count."""
        cached: np.ndarray | None = self.__dict__.get("_image")
        if cached is None:  # two threads may both draw it once; the result is the same
            from .draw import annotate

            cached = side_by_side(
                [annotate(self.frame, r.detections) for r in self.results.values()],
                [_caption(v, r) for v, r in self.results.items()],
                self.grid,
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


CSV_COLUMNS = ("frame", "variant", "preprocess_ms", "inference_ms", "postprocess_ms", "total_ms", "detections")


@dataclass
class VideoRun:
    """The outcome of :func:`process_video`."""

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what ``python -m core video --json`` prints)."""
        stats = self.stats
        return {
            "source": str(self.source),
            "frames": self.frames,
            "wall_seconds": round(self.wall_seconds, 3),
            "fps_processed": round(self.fps_processed, 3),
            "stopped": self.stopped,
            "damage": self.damage,
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

    def write_csv(self, dest: str | Path | TextIO) -> None:
        """Per-frame latencies: one row per frame and variant, columns :data:`CSV_COLUMNS` (milliseconds)."""
        if isinstance(dest, str | Path):
            with open(dest, "w", newline="", encoding="utf-8") as fp:
                self.write_csv(fp)
            return
        w = csv.writer(dest, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for i in range(self.frames):
            for v in self.variants:
                t = self.timings[v][i]
                ms = (f"{x:.3f}" for x in (t.preprocess, t.inference, t.postprocess, t.total))
                w.writerow([i, v, *ms, self.counts[v][i]])

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
        for frame in _decode(path, label, max_frames, damage):
            if stop.is_set() or not _put(out, frame, stop.is_set):
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
                writer.write(image)
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

    stop = threading.Event()
    frames_q: queue.Queue[Any] = queue.Queue(maxsize=DECODE_QUEUE)
    damage: list[str] = []
    decoder = threading.Thread(
        target=_decode_worker, args=(src, label, max_frames, frames_q, stop, damage), name="video-decode", daemon=True
    )
    encoder = _Encoder(out_path, info.frame_rate, preset) if out_path is not None else None
    timings: dict[str, list[StageTimings]] = {v: [] for v in variants}
    counts: dict[str, list[int]] = {v: [] for v in variants}
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
            results: dict[str, DetectionResult] = {}
            for v, d in zip(variants, dets, strict=True):
                r = d.detect(item, params)
                results[v] = r
                timings[v].append(r.timings)
                counts[v].append(len(r.detections))
            update = FrameUpdate(index, max(total, index + 1), results, time.perf_counter() - started, item, grid)
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
    )


# ---------------------------------------------------------------------------------------------
# the engine alone, for comparison


@dataclass(frozen=True)
class EngineThroughput:
    """Every detector on every frame, frames already in memory: no decode, drawing or encoding."""

    frames: int
    seconds: float
    variant_seconds: dict[str, float]

    @property
    def fps(self) -> float:
        """Frames per second with all variants run on each frame (the ceiling for process_video)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def variant_fps(self) -> dict[str, float]:
        """Frames per second of each variant alone."""
        return {v: self.frames / s if s > 0 else 0.0 for v, s in self.variant_seconds.items()}


def engine_only_throughput(
    detectors: Sequence[Detector], frames: Sequence[np.ndarray], params: PostParams | None = None
) -> EngineThroughput:
    """What the engine achieves on ``frames`` with the calls process_video makes, and nothing else."""
    params = params or PostParams()
    names = [str(d.variant) for d in detectors]
    spent = dict.fromkeys(names, 0.0)
    t0 = time.perf_counter()
    for frame in frames:
        for v, d in zip(names, detectors, strict=True):
            t = time.perf_counter()
            d.detect(frame, params)
            spent[v] += time.perf_counter() - t
    return EngineThroughput(len(frames), time.perf_counter() - t0, spent)
