"""Result types: detections as parallel numpy arrays, and per-call stage timings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Boxes found in one image, in that image's pixel coordinates (xyxy), best first."""

    xyxy: np.ndarray  # (N, 4) float32
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int64
    names: Sequence[str] = field(default_factory=tuple, repr=False)  # the model's class names

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        if self.confidence.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(
                f"confidence {self.confidence.shape} and class_id {self.class_id.shape} must both have shape ({n},)"
            )

    @classmethod
    def empty(cls, names: Sequence[str] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), names)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.names)

    @property
    def class_names(self) -> list[str]:
        return [self.name_of(int(c)) for c in self.class_id]

    def name_of(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else str(class_id)

    def to_records(self, ndigits: int = 2) -> list[dict[str, Any]]:
        """JSON-ready list: ``class_id``, ``class_name``, ``confidence``, ``xyxy``."""
        return [
            {
                "class_id": int(c),
                "class_name": self.name_of(int(c)),
                "confidence": round(float(s), 4),
                "xyxy": [round(float(v), ndigits) for v in box],
            }
            for box, s, c in zip(self.xyxy, self.confidence, self.class_id, strict=True)
        ]


@dataclass(frozen=True)
class StageTimings:
    """Wall-clock time of each stage of one call, in milliseconds."""

    preprocess: float
    inference: float
    postprocess: float

    @property
    def total(self) -> float:
        return self.preprocess + self.inference + self.postprocess

    def to_dict(self) -> dict[str, float]:
        return {
            "preprocess": round(self.preprocess, 3),
            "inference": round(self.inference, 3),
            "postprocess": round(self.postprocess, 3),
        }


@dataclass(frozen=True)
class DetectionResult:
    detections: Detections
    timings: StageTimings
