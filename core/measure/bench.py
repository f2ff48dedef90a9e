"""Benchmark routine: warm-up, N timed iterations, percentiles, stage split."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError
from core.measure.footprint import Footprint
from core.measure.metrics import LatencySpread, LatencyStats, Speedup
from core.measure.transfer import transfer_stats
from core.progress import Progress, no_progress
from core.results import Result, not_in_json
from core.runtime import DetectionResult, Detector, PostParams, physical_cores
from core.tables import Column, Table

# the packages whose version changes what a run measures (the fingerprint lists them; the app's own are left out)
RUNTIME_PACKAGES = ("onnxruntime", "onnxruntime-gpu", "openvino", "torch", "tensorrt", "ultralytics", "numpy", "onnx")


def fingerprint(
    system: dict[str, Any], threads: int | None, imgsz: int, shape: str, model_sha256: str
) -> dict[str, Any]:
    """What two runs must share before their numbers compare (``gate --baseline`` checks it): the machine (CPU
    model and instruction sets, GPU), the CPU threads, the input (image size, shape), the model file's sha256 and
    the runtimes' versions. ``threads`` None or 0: one per physical core, as the runtimes do."""
    return {
        "cpu": system.get("cpu"),
        "cpu_features": list(system.get("cpu_features", [])),
        "gpu": system.get("gpu"),
        "threads": threads or physical_cores(),
        "imgsz": imgsz,
        "shape": shape,
        "model_sha256": model_sha256 or None,
        "versions": {k: v for k, v in system.get("versions", {}).items() if k in RUNTIME_PACKAGES},
    }


@dataclass(frozen=True)
class BenchResult:
    variant: str
    description: str  # what actually ran (provider, threads)
    latency: LatencyStats  # end to end per call: letterbox + inference + post-processing of the batch
    inference: LatencyStats  # the runtime call alone
    stages_ms: dict[str, float]  # mean per stage, per image
    samples_ms: list[float]  # every end-to-end sample, for distribution plots
    warmup: int
    batch_size: int = 1  # images per call; latency is per call (the whole batch), stages per image
    batched_call: bool = True  # the runtime took the batch in one call (False: a fixed-batch-1 file, looped)
    rounds: int = 1  # the timed iterations were split into this many rounds, interleaved with the other variants

    @property
    def spread(self) -> LatencySpread:
        """Median per call, its p10-p90 spread and the median's 95 % interval."""
        return LatencySpread.from_samples(self.samples_ms)

    @property
    def fps(self) -> float:
        """Images per second at the median latency (the statistic speed-ups are computed from)."""
        return self.spread.fps * self.batch_size

    def to_dict(self) -> dict[str, Any]:
        lat = self.latency.to_dict()
        spread = self.spread
        return {
            "variant": self.variant,
            "runs_on": self.description,
            "latency_ms": {k: lat[k] for k in ("p50", "p90", "p95", "p99", "mean", "min", "max", "std")}
            | {"p10": round(spread.p10, 3), "median_ci95": [round(spread.lo, 3), round(spread.hi, 3)]},
            "inference_ms": {k: self.inference.to_dict()[k] for k in ("p50", "p90", "mean", "min")},
            "fps": round(self.fps, 2),
            "stages_ms": {k: round(v, 3) for k, v in self.stages_ms.items()},
            "iterations": self.latency.count,
            "warmup": self.warmup,
            "rounds": self.rounds,
            "batch_size": self.batch_size,
            "batched_call": self.batched_call,
            "per_image_p50_ms": round(self.latency.p50 / self.batch_size, 3),
            "samples_ms": [round(x, 3) for x in self.samples_ms],  # every timed call, in order (gate resamples them)
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
    """One variant alone (see :func:`benchmark_variants` to compare several)."""
    return benchmark_variants(
        [detector], image, warmup=warmup, iterations=iterations, params=params, progress=progress, batch=batch
    )[0]


def benchmark_variants(
    detectors: Sequence[Detector],
    image: np.ndarray,
    *,
    warmup: int = 10,
    iterations: int = 100,
    rounds: int | None = None,
    params: PostParams | None = None,
    progress: Progress = no_progress,
    batch: int = 1,
) -> list[BenchResult]:
    """Time the whole per-image pipeline of each detector on an already decoded image.

    Each detector is warmed up, then the ``iterations`` timed calls are split into ``rounds`` (default: up to
    10, at least 5 calls each) run in turn for every detector, so a change in the machine's speed during the
    run (other load, clock boost, thermal) hits every variant alike instead of favouring the first; each round
    starts one detector later, so none always runs first.

    ``batch`` > 1 is the throughput mode: each call letterboxes ``batch`` copies of the image, runs them
    through the runtime at once and post-processes each; latency is per call, stages and fps per image.
    """
    if iterations < 1 or warmup < 0 or batch < 1:
        raise InputError("iterations must be >= 1, warm-up >= 0 and batch >= 1")
    params = params or PostParams()
    images = [image] * batch
    rounds = max(1, min(rounds or min(10, iterations // 5), iterations))
    per_round = [iterations // rounds + (1 if r < iterations % rounds else 0) for r in range(rounds)]
    total_calls = len(detectors) * (warmup + iterations)
    done = 0

    def run(det: Detector) -> list[DetectionResult]:
        return [det.detect(image, params)] if batch == 1 else det.detect_batch(images, params)

    for det in detectors:
        for _ in range(warmup):
            run(det)
            done += 1
        progress(done / total_calls, f"{det.variant}: warm-up")
    samples: dict[int, dict[str, list[float]]] = {
        id(d): {"total": [], "pre": [], "inf": [], "post": [], "call": []} for d in detectors
    }
    for r, count in enumerate(per_round):
        # each round starts with the next detector: no variant always runs first (or right after another)
        for det in [*detectors[r % len(detectors) :], *detectors[: r % len(detectors)]]:
            got = samples[id(det)]
            for _ in range(count):
                t = time.perf_counter()
                results = run(det)
                wall = (time.perf_counter() - t) * 1e3
                got["total"].append(results[0].timings.total if batch == 1 else wall)  # one image: its stages
                got["pre"].append(float(np.mean([x.timings.preprocess for x in results])))
                got["inf"].append(float(np.mean([x.timings.inference for x in results])))
                got["post"].append(float(np.mean([x.timings.postprocess for x in results])))
                got["call"].append(sum(x.timings.inference for x in results))
            done += count
            progress(done / total_calls, f"round {r + 1}/{rounds}: {det.variant}")
    out = []
    for det in detectors:
        got = samples[id(det)]
        limit = det.max_batch
        out.append(
            BenchResult(
                variant=str(det.variant),
                description=det.backend.description,
                latency=LatencyStats.from_samples(got["total"]),
                inference=LatencyStats.from_samples(got["call"]),
                stages_ms={
                    "preprocess": float(np.mean(got["pre"])),
                    "inference": float(np.mean(got["inf"])),
                    "postprocess": float(np.mean(got["post"])),
                },
                samples_ms=got["total"],
                warmup=warmup,
                batch_size=batch,
                batched_call=batch == 1 or limit is None or limit >= batch,
                rounds=rounds,
            )
        )
    return out


def speedups(results: Sequence[BenchResult]) -> list[Speedup]:
    """Each result against the first, from the medians (the FPS column's statistic) and their intervals."""
    return [Speedup.of(results[0].spread, r.spread) for r in results] if results else []


def bench_table(results: Sequence[BenchResult]) -> Table:
    """The Benchmark page's table, the CLI's and the CSV's: latency per call, FPS per image, speed-up vs the first
    from the same medians, and "no measurable difference" where the medians' intervals allow none."""
    if not results:
        return Table((Column("variant"),), [])
    base = results[0]
    batch = base.batch_size
    per = "image" if batch == 1 else f"call of {batch} images"
    columns = (
        Column("variant"),
        Column("batch"),
        Column("p50 ms", 2),
        Column("p10 ms", 2),
        Column("p90 ms", 2),
        Column("p99 ms", 2),
        Column("FPS", 2),
        Column(f"speed-up vs {base.variant}", 2),
        Column(f"vs {base.variant}"),
        Column("runs on"),
    )
    rows = []
    for r, up in zip(results, speedups(results), strict=True):
        s = r.spread
        verdict = "(reference)" if r is base else up.words()
        rows.append(
            (r.variant, r.batch_size, s.p50, s.p10, s.p90, r.latency.p99, r.fps, up.value, verdict, r.description)
        )
    notes = [
        f"ms per {per}, end to end (letterbox + inference + NMS): median of {base.latency.count} timed calls in "
        f"{base.rounds} rounds, variants in turn; FPS: images per second at the median; speed-up: ratio of medians, "
        "with its 95 % bootstrap interval"
    ]
    notes += [
        f"{r.variant}: this model file has a fixed batch of 1; the batch ran image by image"
        for r in results
        if not r.batched_call
    ]
    return Table(columns, rows, tuple(notes))


@dataclass
class BenchRun(Result):
    """A benchmark of several variants on one image: their results, and the model, settings and machine."""

    kind = "bench"
    system: dict[str, Any]
    model: str
    imgsz: int
    image: str
    batch_size: int
    results: list[BenchResult]
    threads: int | None = not_in_json()  # what was asked for (0 or None: one per physical core)
    iterations: int = field(default=0, metadata={"json": False})
    # per variant on a cluster node: its transfer samples (ms per call) and the node it ran on
    transfers: dict[str, list[float]] = field(default_factory=dict, metadata={"json": False})
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={"json": False})
    footprints: list[Footprint] = field(default_factory=list, metadata={"json": False})  # bench --memory
    shape: str = "square"  # the input shape policy it ran (core.variants.Shape)
    model_sha256: str = field(default="", metadata={"json": False})  # the model source's hash ("": not recorded)

    def variant_dict(self, r: BenchResult, up: Speedup | None = None) -> dict[str, Any]:
        """One variant's row of the JSON: its result, its speed-up over the first variant (with the interval), plus
        its transfer when it ran on a cluster node."""
        out = r.to_dict()
        if up is not None:
            out["speedup_vs_reference"] = up.to_dict()
        if samples := self.transfers.get(r.variant):
            out["transfer_ms"] = transfer_stats(samples)
            if r.variant in self.nodes:
                out["node"] = self.nodes[r.variant]
        return out

    def payload(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "model": self.model,
            "imgsz": self.imgsz,
            "shape": self.shape,
            "image": self.image,
            "batch_size": self.batch_size,
            "reference": self.results[0].variant if self.results else None,
            "variants": [self.variant_dict(r, up) for r, up in zip(self.results, speedups(self.results), strict=True)],
            "fingerprint": fingerprint(self.system, self.threads, self.imgsz, self.shape, self.model_sha256),
            **({"footprint": [f.to_dict() for f in self.footprints]} if self.footprints else {}),
        }

    def table(self) -> Table:
        return bench_table(self.results)

    def text(self) -> str:
        head = (
            f"{self.model} @ {self.shape} {self.imgsz}, {Path(self.image).name}, {self.iterations} iterations, "
            f"batch size {self.batch_size}"
        )
        return "\n".join([head, self.table().to_text(), *(f.words() for f in self.footprints)])
