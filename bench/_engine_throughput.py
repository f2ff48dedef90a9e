"""The engine alone on frames already in memory: the ceiling the video benchmarks compare the pipeline with.

Every detector's ``detect`` on every frame, as :func:`core.video.process_video` calls it, with no decoding,
drawing or encoding. Used by bench/video_pipeline.py, bench/video_app.py and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.runtime import PostParams

if TYPE_CHECKING:
    from core.runtime import Detector


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
