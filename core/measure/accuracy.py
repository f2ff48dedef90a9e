"""Accuracy on a labelled YOLO-format folder: mAP50 / mAP50-95 with YOLOv5 val.py's protocol.

Matching and AP come from ``ultralytics`` (``BaseValidator.match_predictions`` and
``utils.metrics.ap_per_class``: 101-point COCO interpolation), not from code of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.data import labels_to_xyxy
from core.errors import RuntimeUnavailableError
from core.measure.bootstrap import Matches
from core.runtime import Detections, box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclass(frozen=True)
class ClassAP:
    class_id: int
    name: str
    instances: int
    ap50: float
    ap50_95: float


@dataclass(frozen=True)
class MapResult:
    map50: float
    map50_95: float
    images: int
    instances: int
    per_class: list[ClassAP]


class MapAccumulator:
    """Collects per-image matches; :meth:`result` computes AP with ultralytics' implementation."""

    def __init__(self) -> None:
        import importlib.util

        missing = [m for m in ("torch", "ultralytics") if importlib.util.find_spec(m) is None]
        if missing:
            raise RuntimeUnavailableError(
                f"mAP needs {' and '.join(missing)} (ultralytics' box matching and AP): "
                "pip install -r requirements.txt. Detection, comparison, benchmarks and video run without them."
            )
        self._tp: list[np.ndarray] = []
        self._conf: list[np.ndarray] = []
        self._pred_cls: list[np.ndarray] = []
        self._pred_image: list[np.ndarray] = []
        self._target_cls: list[np.ndarray] = []
        self.images = 0

    def add(self, detections: Detections, labels: np.ndarray, width: int, height: int) -> None:
        import torch
        from ultralytics.engine.validator import BaseValidator

        index = self.images
        self.images += 1
        target_cls = labels[:, 0].astype(np.int64)
        self._target_cls.append(target_cls)
        n = len(detections)
        if n == 0:
            return
        order = np.argsort(-detections.confidence, kind="stable")
        dets = detections[order]
        correct = np.zeros((n, len(IOU_THRESHOLDS)), dtype=bool)
        if len(labels):
            iou = box_iou(labels_to_xyxy(labels, width, height), dets.xyxy)
            correct = BaseValidator.match_predictions(
                _Thresholds(),  # type: ignore[arg-type]  # it only reads self.iouv
                torch.from_numpy(dets.class_id),
                torch.from_numpy(target_cls),
                torch.from_numpy(iou),
            ).numpy()
        self._tp.append(correct)
        self._conf.append(dets.confidence)
        self._pred_cls.append(dets.class_id)
        self._pred_image.append(np.full(n, index, dtype=np.int64))

    @classmethod
    def merge(cls, parts: Sequence[MapAccumulator]) -> MapAccumulator:
        """The accumulator of all ``parts``' images, in order: exactly what one pass over them gives."""
        out = cls()
        for p in parts:
            out._tp += p._tp
            out._conf += p._conf
            out._pred_cls += p._pred_cls
            out._pred_image += [i + out.images for i in p._pred_image]
            out._target_cls += p._target_cls
            out.images += p.images
        return out

    def matches(self) -> Matches:
        """Every detection's matches and every label, with the image each belongs to (for the bootstrap)."""
        t = len(IOU_THRESHOLDS)
        target = [np.full(len(c), i, dtype=np.int64) for i, c in enumerate(self._target_cls)]
        return Matches(
            tp=np.concatenate(self._tp) if self._tp else np.zeros((0, t), bool),
            conf=np.concatenate(self._conf) if self._conf else np.zeros(0, np.float32),
            pred_cls=np.concatenate(self._pred_cls) if self._pred_cls else np.zeros(0, np.int64),
            pred_image=np.concatenate(self._pred_image) if self._pred_image else np.zeros(0, np.int64),
            target_cls=np.concatenate(self._target_cls) if self._target_cls else np.zeros(0, np.int64),
            target_image=np.concatenate(target) if target else np.zeros(0, np.int64),
            images=self.images,
        )

    def result(self, names: tuple[str, ...] | list[str]) -> MapResult:
        from ultralytics.utils.metrics import ap_per_class

        target_cls = np.concatenate(self._target_cls) if self._target_cls else np.zeros(0, np.int64)
        if not self._tp or len(target_cls) == 0:
            return MapResult(0.0, 0.0, self.images, len(target_cls), [])
        out = ap_per_class(
            np.concatenate(self._tp), np.concatenate(self._conf), np.concatenate(self._pred_cls), target_cls
        )
        ap, classes = out[5], out[6]
        ids, n = np.unique(target_cls.astype(np.int64), return_counts=True)
        counts = dict(zip(ids.tolist(), n.tolist(), strict=True))
        per_class = [
            ClassAP(
                int(c),
                names[int(c)] if int(c) < len(names) else str(int(c)),
                int(counts.get(int(c), 0)),
                float(ap[i, 0]),
                float(ap[i].mean()),
            )
            for i, c in enumerate(classes)
        ]
        return MapResult(float(ap[:, 0].mean()), float(ap.mean()), self.images, len(target_cls), per_class)


class _Thresholds:
    """The one attribute ``BaseValidator.match_predictions`` reads from its validator."""

    def __init__(self) -> None:
        import torch

        self.iouv = torch.from_numpy(IOU_THRESHOLDS)
