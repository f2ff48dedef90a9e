"""Video files for the tests, written with PyAV: clips with a marker (odd sizes, rotation metadata, variable
frame rate), noise that does not compress (to cut files in half), audio only; and a stand-in detector.

Real clips come from the shared folder (``videos_dir``): :data:`TOKYO` and :data:`CARS`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from core.runtime.detections import DetectionResult, Detections, StageTimings
from core.variants import Shape
from core.video import H264Writer

TOKYO = "street_people_car_tokyo_360p.mp4"
CARS = "car-detection.mp4"
MARK = 200  # marker brightness; the background is 30


def make_clip(
    path: Path,
    width: int,
    height: int,
    frames: int,
    *,
    fps: int = 30,
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    gaps_ms: list[int] | None = None,
) -> Path:
    """A clip with a bright square in the stored picture's top-left corner on a dark background."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if rotation is not None:
        stream.set_display_rotation(rotation)  # FFmpeg convention: degrees counter-clockwise
    if gaps_ms is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
    image = np.full((height, width, 3), 30, np.uint8)
    image[: height // 4, : width // 4] = MARK
    t = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if gaps_ms is not None:
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            t += gaps_ms[i % len(gaps_ms)]
        else:
            frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


def noisy_clip(path: Path, frames: int) -> Path:
    """An MP4 with its index first (+faststart, so it survives truncation) and frames of real size:
    noise does not compress, so cutting the file in half cuts the frames in half."""
    rng = np.random.default_rng(0)
    with H264Writer(path, 30, 160, 96) as w:
        for _ in range(frames):
            w.write(rng.integers(0, 256, (96, 160, 3), dtype=np.uint8))
    return path


def marker_corner(rgb: np.ndarray) -> str:
    """Which corner holds the bright square: 'top-left', 'top-right', 'bottom-left' or 'bottom-right'."""
    ys, xs = np.nonzero(rgb.mean(axis=2) > (MARK + 30) / 2)
    h, w = rgb.shape[:2]
    return f"{'top' if ys.mean() < h / 2 else 'bottom'}-{'left' if xs.mean() < w / 2 else 'right'}"


def decoded(path: Path) -> tuple[str, str, int, int, int]:
    """(codec, pixel format, width, height, frames) by decoding the whole file with PyAV."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return s.codec_context.name, s.codec_context.pix_fmt, s.codec_context.width, s.codec_context.height, n


class FakeDetector:
    """A stand-in that finds one box, optionally failing at call ``fail_at`` (for the error paths)."""

    def __init__(self, name: str = "fake:fp32", fail_at: int | None = None) -> None:
        self.variant = name
        self.calls = 0
        self.fail_at = fail_at
        self.node = None  # the Detector contract: runs in this process, so no transfer
        self.transfer_ms: list[float] = []
        self.shape = Shape.SQUARE  # ...and its input shape policy: square, 640x640 for every frame

    def hw_for(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        return (640, 640)

    def detect(self, image: np.ndarray, params: object = None) -> DetectionResult:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("backend crashed")
        h, w = image.shape[:2]
        box = np.array([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]], np.float32)
        dets = Detections(box, np.array([0.9], np.float32), np.array([0]), ("thing",))
        return DetectionResult(dets, StageTimings(1.0, 2.0, 0.5))


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 44100, i * 1024
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path
