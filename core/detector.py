"""A loaded variant: backend + pre/post-processing -> detections and stage timings."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .backends import Backend
from .detections import DetectionResult, Detections, StageTimings
from .geometry import Letterbox
from .processing import PostParams, compact_raw, postprocess, preprocess
from .sources import ModelInfo
from .variants import Variant


@dataclass(frozen=True)
class RawOutput:
    """The network's output for one image, kept so post-processing can be re-run with new settings."""

    output: np.ndarray
    letterbox: Letterbox
    preprocess_ms: float
    inference_ms: float

    @property
    def nbytes(self) -> int:
        return int(self.output.nbytes)


class Detector:
    """One variant, ready to run. Safe to share between threads: a backend that is not thread-safe
    (e.g. a TensorRT execution context) is called under a lock."""

    def __init__(self, variant: Variant, backend: Backend, info: ModelInfo, input_hw: tuple[int, int], path: Path):
        self.variant = variant
        self.backend = backend
        self.info = info
        self.input_hw = input_hw
        self.model_path = path
        self._lock = threading.Lock() if not getattr(backend, "thread_safe", False) else None

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        if self._lock is None:
            return self.backend.infer(tensor)
        with self._lock:
            return self.backend.infer(tensor)

    @property
    def names(self) -> tuple[str, ...]:
        return self.info.names

    def infer_raw(self, image: np.ndarray) -> RawOutput:
        t0 = time.perf_counter()
        tensor, lb = preprocess(image, self.input_hw)
        t1 = time.perf_counter()
        out = self._run(tensor)
        t2 = time.perf_counter()
        return RawOutput(out, lb, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def compact(self, raw: RawOutput, min_conf: float) -> RawOutput:
        """A smaller copy of ``raw`` that gives the same detections for any conf >= ``min_conf``."""
        return replace(raw, output=compact_raw(raw.output, self.info.layout, min_conf))

    def postprocess(self, raw: RawOutput, params: PostParams) -> tuple[Detections, float]:
        t0 = time.perf_counter()
        dets = postprocess(raw.output, self.info.layout, raw.letterbox, params, self.info.names)
        return dets, (time.perf_counter() - t0) * 1e3

    def detect(self, image: np.ndarray, params: PostParams | None = None) -> DetectionResult:
        raw = self.infer_raw(image)
        dets, post_ms = self.postprocess(raw, params or PostParams())
        return DetectionResult(dets, StageTimings(raw.preprocess_ms, raw.inference_ms, post_ms))

    def warmup(self, n: int = 1) -> None:
        dummy = np.zeros((1, 3, *self.input_hw), dtype=np.float32)
        for _ in range(n):
            self._run(dummy)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
