"""A loaded variant: backend + pre/post-processing -> detections and stage timings."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.errors import InputError, Setting
from core.runtime.backends import Backend
from core.runtime.detections import DetectionResult, Detections, StageTimings
from core.runtime.geometry import Letterbox, rect_hw
from core.runtime.head import YoloV5Head
from core.runtime.onnx_file import ModelInfo
from core.runtime.placement import Node
from core.runtime.processing import PostParams, compact_raw, postprocess, preprocess
from core.variants import Shape, Variant


@dataclass(frozen=True)
class RawOutput:
    """The network's output for one image, kept so post-processing can be re-run with new settings."""

    output: np.ndarray
    letterbox: Letterbox
    preprocess_ms: float
    inference_ms: float  # the runtime call and the box decode; per image (amortised) for a batch

    @property
    def nbytes(self) -> int:
        return int(self.output.nbytes)


class Detector:
    """One variant, ready to run. Safe to share between threads: a backend that is not thread-safe
    (e.g. a TensorRT execution context) is called under a lock.

    The remote contract, declared for every detector: ``node`` is where it runs (None: this process; a
    :class:`~core.runtime.placement.Node` for a variant on a cluster node) and ``transfer_ms`` holds, per call,
    the time spent carrying frames to that node and results back, apart from its latency (empty when local).
    """

    node: Node | None
    transfer_ms: list[float]

    def __init__(
        self,
        variant: Variant,
        backend: Backend,
        info: ModelInfo,
        input_hw: tuple[int, int],
        shape: Shape = Shape.SQUARE,
    ):
        self.variant = variant
        self.backend = backend
        self.info = info
        self.input_hw = input_hw  # the model's own input; under the rect policy, each image's is :meth:`hw_for`
        self.shape = shape
        self._warm: set[tuple[int, int, int]] = set()  # (batch, h, w) inputs already run once (rect: untimed first)
        if shape is Shape.RECT and not (ok := backend.any_shape()):
            backend.close()
            raise InputError(f"{variant} cannot run the rect shape: {ok.reason}", setting=Setting.SHAPE)
        self._lock = None if backend.thread_safe else threading.Lock()
        # A backend that stopped the graph before the box decode (core.runtime.head): decode here, candidates only.
        self.head: YoloV5Head | None = backend.head
        self.node = None
        self.transfer_ms = []

    @property
    def max_batch(self) -> int | None:
        """Largest batch the backend runs in one call (None: any); 1 for fixed-batch model files."""
        return self.backend.max_batch

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        if self._lock is None:
            return self.backend.infer(tensor)
        with self._lock:
            return self.backend.infer(tensor)

    def _run_heads(self, tensor: np.ndarray) -> list[np.ndarray]:
        if self._lock is None:
            return self.backend.infer_heads(tensor)
        with self._lock:
            return self.backend.infer_heads(tensor)

    @property
    def names(self) -> tuple[str, ...]:
        return self.info.names

    @property
    def size(self) -> int:
        return max(self.input_hw)

    @property
    def shape_words(self) -> str:
        """How results name the input shape: "square 640", "rect 640"."""
        return self.shape.words(self.size)

    def hw_for(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """The network input (height, width) for an image of ``image_hw``: the model's own input (square), or the
        minimal-padding rectangle (rect)."""
        if self.shape is Shape.SQUARE:
            return self.input_hw
        return rect_hw(image_hw[0], image_hw[1], self.size, self.info.stride)

    def infer_raw(self, image: np.ndarray, min_conf: float = 0.0) -> RawOutput:
        """Letterbox and run one image. The output holds at least every candidate whose objectness is above
        ``min_conf`` (the lowest confidence threshold that will be applied to it; 0 keeps all)."""
        hw = self.hw_for(image.shape[:2])
        self._first_call(1, hw)
        t0 = time.perf_counter()
        tensor, lb = preprocess(image, hw)
        t1 = time.perf_counter()
        out = self.head.decode(self._run_heads(tensor), min_conf) if self.head is not None else self._run(tensor)
        t2 = time.perf_counter()
        return RawOutput(out, lb, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def infer_raw_batch(self, images: Sequence[np.ndarray], min_conf: float = 0.0) -> list[RawOutput]:
        """Several images in one runtime call when the backend takes batches, else one call each.

        Timings are per image: each image's own letterbox, and the batch's inference divided by its size. Under
        the rect policy images of different input shapes run as one batch per shape (as ``val.py``'s rectangular
        batches), in the order given back.
        """
        if len(images) <= 1 or self.head is None or self.max_batch is not None:
            return [self.infer_raw(image, min_conf) for image in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(self.hw_for(image.shape[:2]), []).append(i)
        if len(groups) > 1:
            out: dict[int, RawOutput] = {}
            for members in groups.values():
                out.update(zip(members, self.infer_raw_batch([images[i] for i in members], min_conf), strict=True))
            return [out[i] for i in range(len(images))]
        hw = next(iter(groups))
        self._first_call(len(images), hw)
        tensor = np.empty((len(images), 3, *hw), dtype=np.float32)
        boxes: list[Letterbox] = []
        pre: list[float] = []
        for i, image in enumerate(images):
            t = time.perf_counter()
            one, lb = preprocess(image, hw)
            tensor[i] = one[0]
            boxes.append(lb)
            pre.append((time.perf_counter() - t) * 1e3)
        t1 = time.perf_counter()
        outs = self._run_heads(tensor)
        decoded = [self.head.decode(outs, min_conf, i) for i in range(len(images))]
        per_image = (time.perf_counter() - t1) * 1e3 / len(images)
        return [RawOutput(out, lb, p, per_image) for out, lb, p in zip(decoded, boxes, pre, strict=True)]

    def compact(self, raw: RawOutput, min_conf: float) -> RawOutput:
        """A smaller copy of ``raw`` that gives the same detections for any conf >= ``min_conf``."""
        return replace(raw, output=compact_raw(raw.output, self.info.layout, min_conf))

    def postprocess(self, raw: RawOutput, params: PostParams) -> tuple[Detections, float]:
        t0 = time.perf_counter()
        dets = postprocess(raw.output, self.info.layout, raw.letterbox, params, self.info.names)
        return dets, (time.perf_counter() - t0) * 1e3

    def detect(self, image: np.ndarray, params: PostParams | None = None) -> DetectionResult:
        params = params or PostParams()
        raw = self.infer_raw(image, params.conf)
        dets, post_ms = self.postprocess(raw, params)
        return DetectionResult(dets, StageTimings(raw.preprocess_ms, raw.inference_ms, post_ms))

    def detect_batch(self, images: Sequence[np.ndarray], params: PostParams | None = None) -> list[DetectionResult]:
        """:meth:`detect` for several images, run as one batch where the backend allows it."""
        params = params or PostParams()
        out = []
        for raw in self.infer_raw_batch(images, params.conf):
            dets, post_ms = self.postprocess(raw, params)
            out.append(DetectionResult(dets, StageTimings(raw.preprocess_ms, raw.inference_ms, post_ms)))
        return out

    def _first_call(self, batch: int, hw: tuple[int, int]) -> None:
        """Rect: a new input shape's first call builds its session or compiled model (tens of ms to seconds), so it
        runs once untimed, and every timing is of a warm shape, as the square shape's are after the warm-up."""
        if self.shape is Shape.RECT and hw != self.input_hw and (batch, *hw) not in self._warm:
            self._warm.add((batch, *hw))
            self._run_zeros(1, batch, hw)

    def warmup(self, n: int = 1, batch: int = 1, image_hw: tuple[int, int] | None = None) -> None:
        """``n`` runs on a zero batch of the input shape images of ``image_hw`` get (None: the model's own)."""
        hw = self.hw_for(image_hw) if image_hw is not None else self.input_hw
        self._warm.add((batch, *hw))
        self._run_zeros(n, batch, hw)

    def _run_zeros(self, n: int, batch: int, hw: tuple[int, int]) -> None:
        dummy = np.zeros((batch, 3, *hw), dtype=np.float32)
        for _ in range(n):
            if self.head is not None:
                self._run_heads(dummy)
            else:
                self._run(dummy)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
