"""Model-specific pre/post-processing around the pure geometry: tensors in, detections out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from core.runtime.detections import Detections
from core.runtime.geometry import Letterbox, batched_nms, letterbox, unletterbox, xywh_to_xyxy

MAX_NMS_CANDIDATES = 30000  # YOLOv5: boxes beyond this many (best first) never reach NMS


class OutputLayout(StrEnum):
    """The two raw output layouts of YOLO detectors exported to ONNX."""

    YOLOV5 = "yolov5"  # [1, N, 5 + nc]: xywh, objectness, class scores (anchor-based)
    ANCHOR_FREE = "anchor-free"  # [1, 4 + nc, N]: xywh, class scores (YOLOv5u, v8 and later)

    def num_classes(self, shape: Sequence[int]) -> int:
        return shape[2] - 5 if self is OutputLayout.YOLOV5 else shape[1] - 4


@dataclass(frozen=True)
class PostParams:
    """What the user tunes after inference. Defaults are YOLOv5 ``detect.py``'s."""

    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 300
    classes: tuple[int, ...] | None = None  # keep only these class ids
    multi_label: bool = False  # a box may carry several classes (YOLOv5 val.py protocol)
    agnostic: bool = False  # NMS across classes

    def __post_init__(self) -> None:
        from core.errors import InputError

        if not 0.0 <= self.conf <= 1.0:
            raise InputError(f"confidence threshold must be within 0..1, got {self.conf}")
        if not 0.0 <= self.iou <= 1.0:
            raise InputError(f"IoU threshold must be within 0..1, got {self.iou}")
        if self.max_det < 1:
            raise InputError(f"max detections must be at least 1, got {self.max_det}")


EVAL_PARAMS = PostParams(conf=0.001, iou=0.6, max_det=300, multi_label=True)  # YOLOv5 val.py


def preprocess(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 HWC image -> float32 NCHW tensor in 0..1, letterboxed to ``input_hw``."""
    boxed, lb = letterbox(image, input_hw)
    tensor = np.empty((1, 3, *input_hw), dtype=np.float32)
    np.multiply(boxed.transpose(2, 0, 1), np.float32(1 / 255), out=tensor[0], casting="unsafe")
    return tensor, lb


def compact_raw(raw: np.ndarray, layout: OutputLayout, min_conf: float) -> np.ndarray:
    """Drop candidates that cannot pass any threshold >= ``min_conf``: same detections, far less memory.

    A YOLOv5 row's confidence is objectness x class score <= objectness, and postprocess first keeps
    rows with objectness > conf; an anchor-free column passes only if its best class score > conf.
    """
    pred = raw[0] if raw.ndim == 3 else raw
    if layout is OutputLayout.ANCHOR_FREE:
        return np.ascontiguousarray(pred[:, pred[4:].max(axis=0) > min_conf])[None]
    return np.ascontiguousarray(pred[pred[:, 4] > min_conf])[None]


def postprocess(
    raw: np.ndarray, layout: OutputLayout, lb: Letterbox, params: PostParams, names: Sequence[str] = ()
) -> Detections:
    """Decode one image's raw output, filter, class-aware NMS, and map boxes to the source image."""
    pred = raw[0] if raw.ndim == 3 else raw
    if layout is OutputLayout.ANCHOR_FREE:
        scores_all = pred[4:]
        keep = scores_all.max(axis=0) > params.conf
        pred = pred[:, keep].T
        boxes_xywh, scores = pred[:, :4], pred[:, 4:]
    else:
        pred = pred[pred[:, 4] > params.conf]
        boxes_xywh, scores = pred[:, :4], pred[:, 5:] * pred[:, 4:5]
    if len(pred) == 0:
        return Detections.empty(names)

    boxes = xywh_to_xyxy(boxes_xywh.astype(np.float32, copy=False))
    if params.multi_label:
        idx, cls = np.nonzero(scores > params.conf)
        boxes, conf = boxes[idx], scores[idx, cls]
    else:
        cls = scores.argmax(axis=1)
        conf = scores[np.arange(len(scores)), cls]
        mask = conf > params.conf
        boxes, conf, cls = boxes[mask], conf[mask], cls[mask]
    if params.classes is not None:
        mask = np.isin(cls, np.asarray(params.classes))
        boxes, conf, cls = boxes[mask], conf[mask], cls[mask]
    if len(boxes) == 0:
        return Detections.empty(names)
    if len(boxes) > MAX_NMS_CANDIDATES:
        top = np.argsort(-conf, kind="stable")[:MAX_NMS_CANDIDATES]
        boxes, conf, cls = boxes[top], conf[top], cls[top]

    nms_cls = np.zeros_like(cls) if params.agnostic else cls
    keep_idx = batched_nms(boxes, conf, nms_cls, params.iou, params.max_det)
    return Detections(
        xyxy=unletterbox(boxes[keep_idx], lb),
        confidence=conf[keep_idx].astype(np.float32),
        class_id=cls[keep_idx].astype(np.int64),
        names=names,
    )
