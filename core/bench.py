"""Benchmark routine: warm-up, N timed iterations, percentiles, stage split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .detector import Detector
from .metrics import LatencyStats
from .processing import PostParams
from .progress import Progress, no_progress


@dataclass(frozen=True)
class BenchResult:
    variant: str
    description: str  # what actually ran (provider, threads)
    latency: LatencyStats  # end to end per image: letterbox + inference + post-processing
    inference: LatencyStats  # the runtime call alone
    stages_ms: dict[str, float]  # mean per stage
    samples_ms: list[float]  # every end-to-end sample, for distribution plots
    warmup: int

    @property
    def fps(self) -> float:
        return self.latency.fps

    def to_dict(self) -> dict[str, Any]:
        lat = self.latency.to_dict()
        return {
            "variant": self.variant,
            "runs_on": self.description,
            "latency_ms": {k: lat[k] for k in ("p50", "p90", "p95", "p99", "mean", "min", "max", "std")},
            "inference_ms": {k: self.inference.to_dict()[k] for k in ("p50", "p90", "mean", "min")},
            "fps": round(self.fps, 2),
            "stages_ms": {k: round(v, 3) for k, v in self.stages_ms.items()},
            "iterations": self.latency.count,
            "warmup": self.warmup,
        }


def benchmark(
    detector: Detector,
    image: np.ndarray,
    *,
    warmup: int = 10,
    iterations: int = 100,
    params: PostParams | None = None,
    progress: Progress = no_progress,
) -> BenchResult:
    """Time the whole per-image pipeline on an already decoded image."""
    params = params or PostParams()
    for i in range(warmup):
        detector.detect(image, params)
        progress(i / max(warmup + iterations, 1), f"{detector.variant}: warm-up")
    pre, inf, post, total = [], [], [], []
    for i in range(iterations):
        t = detector.detect(image, params).timings
        pre.append(t.preprocess)
        inf.append(t.inference)
        post.append(t.postprocess)
        total.append(t.total)
        if i % 5 == 0 or i == iterations - 1:
            progress((warmup + i + 1) / (warmup + iterations), f"{detector.variant}: {i + 1}/{iterations}")
    return BenchResult(
        variant=str(detector.variant),
        description=detector.backend.description,
        latency=LatencyStats.from_samples(total),
        inference=LatencyStats.from_samples(inf),
        stages_ms={
            "preprocess": float(np.mean(pre)),
            "inference": float(np.mean(inf)),
            "postprocess": float(np.mean(post)),
        },
        samples_ms=total,
        warmup=warmup,
    )
