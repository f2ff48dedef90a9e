"""How many concurrent streams at a frame rate one machine carries, per variant.

For each variant and each number of streams N, N streams run at once on this machine for ``seconds``: each stream
is a thread fed frames of a clip at the target rate (stream ``i``'s frame ``k`` is due at
``t0 + (k + i/N) / fps``: cameras are not in phase), and runs them through its own session with the machine's
threads split between the streams (``cores // N``, at least 1). ``ov`` variants run one compiled model in
OpenVINO's THROUGHPUT mode with ``NUM_STREAMS = N`` instead, each stream its own infer request (OpenVINO's way of
serving concurrent callers; the streams it granted are read back and shown).

A stream that is busy when frames fall due does not queue them: when it is free it takes the newest frame due and
the older ones count as dropped, as a live pipeline does. A frame's latency is end to end, from the moment it was
due to its detections (letterbox, inference, NMS), so it includes the wait for the stream to be free. A stream is
**carried** when it keeps up (processes at least :data:`KEEP_UP` of the frames due) and its p95 latency stays under
one frame interval; the verdict per variant is the largest N tried at which every stream is carried.

Frames are decoded before the timing starts: decoding each camera's video is not part of what is measured.
Memory per stream is one more session's footprint (:func:`core.measure.measure_footprint`: the variant loaded in a
fresh process, its resident memory at the peak of 10 inferences above the runtime's baseline).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError
from core.measure import Footprint, measure_footprint
from core.model import ModelStore
from core.progress import Progress, no_progress
from core.results import Result
from core.runtime import BackendOptions, Detector, OrtOptions, PostParams, machine_line, physical_cores
from core.tables import Column, Table
from core.variants import Runtime, Variant

KEEP_UP = 0.99  # a stream keeps up when it processes at least this share of the frames due
MAX_FRAMES = 90  # frames of the clip held in memory (6 s at 15 fps); the streams loop over them
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Quantile:
    """A latency percentile in ms with its distribution-free 95 % interval (order statistics)."""

    value: float
    lo: float
    hi: float

    @classmethod
    def of(cls, samples_ms: Sequence[float], q: float) -> Quantile:
        a = np.sort(np.asarray(samples_ms, dtype=np.float64))
        n = a.size
        if n == 0:
            return cls(float("nan"), float("nan"), float("nan"))
        half = Z95 * math.sqrt(n * q * (1 - q))
        lo = int(np.clip(math.floor(n * q - half), 0, n - 1))
        hi = int(np.clip(math.ceil(n * q + half), 0, n - 1))
        return cls(float(np.percentile(a, 100 * q)), float(a[lo]), float(a[hi]))

    def to_dict(self) -> dict[str, Any]:
        return {"value": round(self.value, 2), "ci95": [round(self.lo, 2), round(self.hi, 2)]}

    def words(self) -> str:
        return f"{self.value:.1f} ms ({self.lo:.1f}-{self.hi:.1f})"


@dataclass(frozen=True)
class StreamResult:
    """One stream of one point: its frames due, processed and dropped, and its per-frame latency."""

    stream: int
    due: int  # frames that fell due during the timed window
    processed: int  # frames run through the detector (the others were dropped: the stream was busy)
    fps: float  # the target rate
    latency_ms: tuple[float, ...] = field(repr=False)  # due -> detections, per processed frame
    compute_ms: tuple[float, ...] = field(repr=False)  # the detector call alone, per processed frame

    @property
    def dropped(self) -> int:
        return self.due - self.processed

    @property
    def budget_ms(self) -> float:
        return 1000.0 / self.fps

    @property
    def p50(self) -> Quantile:
        return Quantile.of(self.latency_ms, 0.50)

    @property
    def p95(self) -> Quantile:
        return Quantile.of(self.latency_ms, 0.95)

    @property
    def keeps_up(self) -> bool:
        return self.due > 0 and self.processed >= KEEP_UP * self.due

    @property
    def carried(self) -> bool:
        return self.keeps_up and self.p95.value < self.budget_ms

    def why_not(self) -> str:
        """'' when carried, else what failed: 'dropped 12 of 120 frames', 'p95 81.2 ms > 66.7 ms'."""
        reasons = []
        if not self.keeps_up:
            reasons.append(f"dropped {self.dropped} of {self.due} frames")
        if not self.p95.value < self.budget_ms:
            reasons.append(f"p95 {self.p95.value:.1f} ms > {self.budget_ms:.1f} ms")
        return ", ".join(reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "frames_due": self.due,
            "frames_processed": self.processed,
            "frames_dropped": self.dropped,
            "latency_p50_ms": self.p50.to_dict(),
            "latency_p95_ms": self.p95.to_dict(),
            "compute_p50_ms": round(float(np.median(self.compute_ms)), 2) if self.compute_ms else None,
            "keeps_up": self.keeps_up,
            "carried": self.carried,
        }


@dataclass(frozen=True)
class CapacityPoint:
    """One variant with N concurrent streams."""

    variant: str
    streams: int
    threads: int  # per stream (one session each), or in all for OpenVINO's throughput streams
    runs_on: str  # what really ran: the backend's own description
    seconds: float  # the timed window
    per_stream: tuple[StreamResult, ...]
    done_s: tuple[float, ...] = field(repr=False)  # when each processed frame finished, from t0

    @property
    def processed(self) -> int:
        return sum(s.processed for s in self.per_stream)

    @property
    def due(self) -> int:
        return sum(s.due for s in self.per_stream)

    @property
    def aggregate_fps(self) -> float:
        return self.processed / self.seconds

    @property
    def fps_spread(self) -> tuple[float, float]:
        """p10-p90 of the frames finished per whole second of the window, all streams together."""
        whole = int(self.seconds)
        if whole < 1:
            return self.aggregate_fps, self.aggregate_fps
        counts = np.bincount(np.floor(np.asarray(self.done_s)).astype(int).clip(0), minlength=whole)[:whole]
        p10, p90 = np.percentile(counts, [10, 90])
        return float(p10), float(p90)

    @property
    def carried(self) -> int:
        return sum(s.carried for s in self.per_stream)

    @property
    def all_carried(self) -> bool:
        return self.carried == self.streams

    @property
    def worst(self) -> StreamResult:
        return max(self.per_stream, key=lambda s: (not s.carried, s.p95.value))

    def to_dict(self) -> dict[str, Any]:
        p10, p90 = self.fps_spread
        return {
            "variant": self.variant,
            "streams": self.streams,
            "threads": self.threads,
            "runs_on": self.runs_on,
            "seconds": round(self.seconds, 2),
            "aggregate_fps": round(self.aggregate_fps, 2),
            "aggregate_fps_per_second_p10_p90": [round(p10, 1), round(p90, 1)],
            "frames_due": self.due,
            "frames_processed": self.processed,
            "carried_streams": self.carried,
            "all_carried": self.all_carried,
            "per_stream": [s.to_dict() for s in self.per_stream],
        }


def _streams(n: int) -> str:
    return f"{n} stream{'s' if n > 1 else ''}"


@dataclass(frozen=True)
class Verdict:
    """What one variant carries: the largest N tried at which every stream is carried (0: not even the first)."""

    variant: str
    fps: float
    carried: int
    points: tuple[CapacityPoint, ...]
    memory: Footprint | None = None
    shared_model: bool = False  # OpenVINO's streams share one compiled model: its memory is counted once

    def words(self) -> str:
        rate = f"{self.fps:g} fps"
        if self.carried:
            head = f"this machine carries {_streams(self.carried)} at {rate} with {self.variant}"
        else:
            head = f"this machine does not carry {_streams(self.points[0].streams)} at {rate} with {self.variant}"
        failed = [p for p in self.points if not p.all_carried]
        if failed:
            parts = [f"{p.streams}: {p.carried}/{p.streams} carried, {p.worst.why_not()}" for p in failed]
            head += f" ({'; '.join(parts)})"
        if self.memory is not None:
            what = "for all streams (one compiled model)" if self.shared_model else "per stream (one more session)"
            head += f"; memory {self.memory.peak_mb:.0f} MB {what}"
        return head

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "streams_carried": self.carried,
            "streams_tried": [p.streams for p in self.points],
            "words": self.words(),
            "memory_mb": None if self.memory is None else round(self.memory.peak_mb, 1),
            "memory_per": None if self.memory is None else ("all streams" if self.shared_model else "stream"),
        }


@dataclass(frozen=True)
class CapacityResult(Result):
    kind = "capacity"

    system: dict[str, Any]
    model: str
    clip: str
    fps: float
    seconds: float
    warmup: int
    cores: int  # threads split between the streams
    points: tuple[CapacityPoint, ...]
    memory: dict[str, Footprint] = field(default_factory=dict)

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(p.variant for p in self.points))

    @property
    def verdicts(self) -> list[Verdict]:
        out = []
        for v in self.variants:
            points = tuple(sorted((p for p in self.points if p.variant == v), key=lambda p: p.streams))
            carried = max((p.streams for p in points if p.all_carried), default=0)
            shared = Variant.parse(v).runtime is Runtime.OV
            out.append(Verdict(v, self.fps, carried, points, self.memory.get(v), shared))
        return out

    def payload(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "clip": self.clip,
            "fps": self.fps,
            "frame_interval_ms": round(1000.0 / self.fps, 2),
            "seconds": self.seconds,
            "warmup": self.warmup,
            "cores": self.cores,
            "keep_up": KEEP_UP,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "points": [p.to_dict() for p in self.points],
            "memory": {k: f.to_dict() for k, f in self.memory.items()},
            "system": self.system,
        }

    def table(self) -> Table:
        """One row per variant and stream count."""
        rows = []
        for p in self.points:
            p10, p90 = p.fps_spread
            worst = p.worst
            spread = f"{p10:.0f}-{p90:.0f}"
            interval = f"{worst.p95.lo:.1f}-{worst.p95.hi:.1f}"
            rows.append((p.variant, p.streams, p.threads, p.aggregate_fps, spread, p.due, p.processed, worst.p95.value,
                         interval, f"{p.carried}/{p.streams}"))  # fmt: skip
        columns = (
            Column("variant"),
            Column("streams"),
            Column("threads"),
            Column("fps (all streams)", 1),
            Column("fps per second p10-p90"),
            Column("frames due"),
            Column("processed"),
            Column("worst p95 ms", 1),
            Column("p95 95% CI"),
            Column("carried"),
        )
        return Table(columns, rows, notes=self.notes())

    def streams_table(self) -> Table:
        """One row per stream: each stream's latency."""
        rows = [
            (p.variant, p.streams, s.stream, s.due, s.processed, s.dropped, s.p50.value, s.p95.value,
             f"{s.p95.lo:.1f}-{s.p95.hi:.1f}", "yes" if s.carried else f"no: {s.why_not()}")
            for p in self.points for s in p.per_stream
        ]  # fmt: skip
        columns = (
            Column("variant"),
            Column("streams"),
            Column("stream"),
            Column("due"),
            Column("processed"),
            Column("dropped"),
            Column("p50 ms", 1),
            Column("p95 ms", 1),
            Column("p95 95% CI"),
            Column("carried"),
        )
        return Table(columns, rows)

    def notes(self) -> tuple[str, ...]:
        budget = 1000.0 / self.fps
        return (
            f"{self.fps:g} fps per stream, {self.seconds:g} s per point after {self.warmup} warm-up frames per stream; "
            f"clip {self.clip}; {self.cores} threads split between the streams (OpenVINO: its throughput streams)",
            f"carried: the stream processed at least {KEEP_UP:.0%} of its frames due and its p95 latency (due -> "
            f"detections) stayed under one frame interval, {budget:.1f} ms",
            f"measured on {machine_line(self.system)}",
        )

    def text(self) -> str:
        lines = [self.table().to_text(), "", self.streams_table().to_text(), ""]
        lines += [v.words() for v in self.verdicts]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# running


def _stream(
    det: Detector,
    frames: Sequence[np.ndarray],
    offset: int,
    phase: float,
    fps: float,
    seconds: float,
    warmup: int,
    params: PostParams,
    start: threading.Barrier,
    t0: list[float],
) -> tuple[StreamResult, list[float]]:
    for i in range(warmup):
        det.detect(frames[(offset + i) % len(frames)], params)
    start.wait()
    begin = t0[0]
    interval = 1.0 / fps
    due = max(0, math.ceil(seconds * fps - phase))  # frames k with due time (k + phase) / fps < seconds
    latency: list[float] = []
    compute: list[float] = []
    done_at: list[float] = []
    k = 0
    while k < due:
        now = time.perf_counter()
        wait = begin + (k + phase) * interval - now
        if wait > 0:
            time.sleep(wait)
            now = time.perf_counter()
        newest = min(due - 1, math.floor((now - begin) / interval - phase))
        k = max(k, newest)  # the frames before the newest one due are dropped
        t = time.perf_counter()
        det.detect(frames[(offset + k) % len(frames)], params)
        end = time.perf_counter()
        latency.append((end - (begin + (k + phase) * interval)) * 1e3)
        compute.append((end - t) * 1e3)
        done_at.append(end - begin)
        k += 1
    return StreamResult(0, due, len(latency), fps, tuple(latency), tuple(compute)), done_at


def run_point(
    detectors: Sequence[Detector],
    streams: int,
    frames: Sequence[np.ndarray],
    *,
    fps: float,
    seconds: float,
    warmup: int,
    params: PostParams,
    threads: int,
) -> CapacityPoint:
    """``streams`` concurrent streams; ``detectors`` has one per stream, or one shared by all (OpenVINO)."""
    t0 = [0.0]

    def go() -> None:
        t0[0] = time.perf_counter() + 0.01

    start = threading.Barrier(streams, action=go)
    results: list[tuple[StreamResult, list[float]] | None] = [None] * streams
    errors: list[BaseException] = []

    def work(i: int) -> None:
        det = detectors[i % len(detectors)]
        try:
            results[i] = _stream(det, frames, i * len(frames) // streams, i / streams, fps, seconds, warmup, params,
                                 start, t0)  # fmt: skip
        except BaseException as exc:  # reported by the caller once every thread is done
            errors.append(exc)
            start.abort()

    workers = [threading.Thread(target=work, args=(i,), name=f"capacity-stream-{i}") for i in range(streams)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]
    per_stream = []
    done: list[float] = []
    for i, got in enumerate(results):
        assert got is not None
        s, at = got
        per_stream.append(StreamResult(i, s.due, s.processed, fps, s.latency_ms, s.compute_ms))
        done += at
    return CapacityPoint(str(detectors[0].variant), streams, threads, detectors[0].backend.description, seconds,
                         tuple(per_stream), tuple(done))  # fmt: skip


def open_point(store: ModelStore, variant: Variant, streams: int, cores: int) -> tuple[list[Detector], int]:
    """The detectors for ``streams`` streams of ``variant`` and the threads each gets: one session per stream with
    ``cores // streams`` threads (no spinning when several share the cores), or for ``ov`` one compiled model in
    OpenVINO's throughput mode with ``streams`` streams over all ``cores``."""
    if variant.runtime is Runtime.OV:
        det = store.open_detector(variant, BackendOptions(threads=cores))
        use_streams = getattr(det.backend, "use_streams", None)
        if use_streams is not None:
            use_streams(streams)
        return [det], cores
    threads = max(1, cores // streams)
    options = BackendOptions(threads=threads, ort=OrtOptions(spin=streams == 1))
    opened: list[Detector] = []
    try:
        for _ in range(streams):
            opened.append(store.open_detector(variant, options))
    except BaseException:
        for det in opened:
            det.close()
        raise
    return opened, threads


def default_clip() -> Path:
    """The first sample clip (``$YOLOLAB_SAMPLE_VIDEOS``), else the demo clip every install has."""
    from core import config
    from core.data import sample_videos
    from core.video import demo_clip

    clips = sample_videos()
    return clips[0] if clips else demo_clip(config.cache_dir() / "samples")


def load_frames(clip: Path, limit: int = MAX_FRAMES) -> list[np.ndarray]:
    from core.video import iter_frames

    frames = list(iter_frames(clip, max_frames=limit))
    if not frames:
        raise InputError(f"{clip.name}: no frame decodes")
    return frames


def measure_capacity(
    store: ModelStore,
    variants: Sequence[Variant],
    streams: Sequence[int],
    clip: Path,
    *,
    fps: float = 15.0,
    seconds: float = 8.0,
    warmup: int = 5,
    cores: int | None = None,
    params: PostParams | None = None,
    memory: bool = True,
    progress: Progress = no_progress,
) -> CapacityResult:
    """Every variant at every stream count; the points run stream count by stream count, the variants in turn
    within each, so a change in the machine's load hits them alike. ``cores``: the threads to split between the
    streams (default: the physical cores). ``memory``: also measure each variant's footprint in a fresh process."""
    from core.runtime import system_info

    if not variants:
        raise InputError("capacity needs at least one variant")
    if any(v.node for v in variants):
        raise InputError("capacity measures this machine: variants placed on cluster nodes are not accepted")
    counts = sorted(set(streams))
    if not counts or counts[0] < 1:
        raise InputError(f"streams must be whole numbers of at least 1, got {list(streams)}")
    if fps <= 0 or seconds <= 0 or warmup < 0:
        raise InputError("fps and seconds must be positive and warm-up at least 0")
    cores = cores or physical_cores()
    params = params or PostParams()
    frames = load_frames(clip)
    total = len(counts) * len(variants)
    points: list[CapacityPoint] = []
    for n in counts:
        for variant in variants:
            progress(len(points) / total, f"{variant}: {_streams(n)}")
            detectors, threads = open_point(store, variant, n, cores)
            try:
                points.append(run_point(detectors, n, frames, fps=fps, seconds=seconds, warmup=warmup,
                                        params=params, threads=threads))  # fmt: skip
            finally:
                for det in detectors:
                    det.close()
    footprints: dict[str, Footprint] = {}
    if memory:
        for variant in variants:
            progress(1.0, f"{variant}: memory in a fresh process")
            det = store.open_detector(variant, BackendOptions(threads=cores))
            try:
                footprints[str(variant)] = measure_footprint(det, store.variant_artefact(variant))
            finally:
                det.close()
    progress(1.0, "done")
    return CapacityResult(system_info(), store.source.name, clip.name, fps, seconds, warmup, cores, tuple(points),
                          footprints)  # fmt: skip
