"""Benchmark routine: warm-up, N timed iterations, percentiles, stage split."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .detections import DetectionResult
from .detector import Detector
from .metrics import LatencyStats
from .processing import PostParams
from .progress import Progress, no_progress
from .tables import Column, Table


@dataclass(frozen=True)
class BenchResult:
    variant: str
    description: str  # what actually ran (provider, threads)
    latency: LatencyStats  # end to end per image: letterbox + inference + post-processing
    inference: LatencyStats  # the runtime call alone
    stages_ms: dict[str, float]  # mean per stage
    samples_ms: list[float]  # every end-to-end sample, for distribution plots
    warmup: int
    batch_size: int = 1  # images per call; latency is per call (the whole batch), stages per image
    batched_call: bool = True  # the runtime took the batch in one call (False: a fixed-batch-1 file, looped)

    @property
    def fps(self) -> float:
        """Images per second."""
        return self.latency.fps * self.batch_size

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
            "batch_size": self.batch_size,
            "batched_call": self.batched_call,
            "per_image_p50_ms": round(self.latency.p50 / self.batch_size, 3),
        }


def benchmark(
    detector: Detector,
    image: np.ndarray,
    *,
    warmup: int = 10,
    iterations: int = 100,
    params: PostParams | None = None,
    progress: Progress = no_progress,
    batch: int = 1,
) -> BenchResult:
    """Time the whole per-image pipeline on an already decoded image.

    ``batch`` > 1 is the throughput mode: each call letterboxes ``batch`` copies of the image, runs them
    through the runtime at once and post-processes each; latency is per call, stages and fps per image.
    """
    params = params or PostParams()
    images = [image] * batch

    def run() -> list[DetectionResult]:
        return [detector.detect(image, params)] if batch == 1 else detector.detect_batch(images, params)

    for i in range(warmup):
        run()
        progress(i / max(warmup + iterations, 1), f"{detector.variant}: warm-up")
    pre, inf, post, total, inf_call = [], [], [], [], []
    for i in range(iterations):
        t = time.perf_counter()
        results = run()
        wall = (time.perf_counter() - t) * 1e3
        total.append(results[0].timings.total if batch == 1 else wall)  # one image: the sum of its stages
        pre.append(float(np.mean([r.timings.preprocess for r in results])))
        inf.append(float(np.mean([r.timings.inference for r in results])))
        post.append(float(np.mean([r.timings.postprocess for r in results])))
        inf_call.append(sum(r.timings.inference for r in results))
        if i % 5 == 0 or i == iterations - 1:
            progress((warmup + i + 1) / (warmup + iterations), f"{detector.variant}: {i + 1}/{iterations}")
    limit = detector.max_batch
    return BenchResult(
        variant=str(detector.variant),
        description=detector.backend.description,
        latency=LatencyStats.from_samples(total),
        inference=LatencyStats.from_samples(inf_call),
        stages_ms={
            "preprocess": float(np.mean(pre)),
            "inference": float(np.mean(inf)),
            "postprocess": float(np.mean(post)),
        },
        samples_ms=total,
        warmup=warmup,
        batch_size=batch,
        batched_call=batch == 1 or limit is None or limit >= batch,
    )


def bench_table(results: Sequence[BenchResult]) -> Table:
    """The Benchmark page's table, the CLI's and the CSV's: latency per call, FPS per image, speed-up vs the first."""
    if not results:
        return Table((Column("variant"),), [])
    base = results[0]
    batch = base.batch_size
    per = "image" if batch == 1 else f"call of {batch} images"
    columns = (
        Column("variant"),
        Column("batch"),
        Column("p50 ms", 2),
        Column("p90 ms", 2),
        Column("p99 ms", 2),
        Column("mean ms", 2),
        Column("min ms", 2),
        Column("FPS", 2),
        Column(f"speed-up vs {base.variant}", 2),
        Column("runs on"),
    )
    rows = [
        (
            r.variant,
            r.batch_size,
            r.latency.p50,
            r.latency.p90,
            r.latency.p99,
            r.latency.mean,
            r.latency.min,
            r.fps,
            base.latency.p50 / r.latency.p50,
            r.description,
        )
        for r in results
    ]
    notes = [f"ms per {per}, end to end (letterbox + inference + NMS); FPS: images per second"]
    notes += [
        f"{r.variant}: this model file has a fixed batch of 1; the batch ran image by image"
        for r in results
        if not r.batched_call
    ]
    return Table(columns, rows, tuple(notes))
