"""Accuracy on a labelled YOLO-format folder: mAP50 / mAP50-95 with YOLOv5 val.py's protocol.

Matching and AP come from ``ultralytics`` (``BaseValidator.match_predictions`` and
``utils.metrics.ap_per_class``: 101-point COCO interpolation), not from code of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bootstrap import Matches
from .detections import Detections
from .errors import InputError, RuntimeUnavailableError
from .formats import IMAGE_SUFFIXES
from .geometry import box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
# Without the model's class count, class ids above this are refused (they are exact in float32 below 2**24).
MAX_CLASS_ID = 9999


@dataclass
class DatasetInventory:
    """What was found in the folder; problems are counted and listed, never fatal."""

    images: int = 0
    labelled: int = 0
    background: int = 0  # images without a label file
    boxes: int = 0
    orphan_labels: list[str] = field(default_factory=list)  # label files without an image
    unreadable_images: list[str] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)  # neither image nor label
    bad_lines: list[str] = field(default_factory=list)  # "file:line: why"

    def summary(self) -> str:
        parts = [f"{self.images} images ({self.labelled} labelled, {self.background} background), {self.boxes} boxes"]
        if self.orphan_labels:
            parts.append(f"{len(self.orphan_labels)} label files without image skipped")
        if self.bad_lines:
            parts.append(f"{len(self.bad_lines)} bad label lines skipped")
        if self.unreadable_images:
            parts.append(f"{len(self.unreadable_images)} unreadable images skipped")
        if self.other_files:
            parts.append(f"{len(self.other_files)} other files ignored")
        return "; ".join(parts)


@dataclass(frozen=True)
class LabelledImage:
    image: Path
    labels: np.ndarray  # (n, 5): class, cx, cy, w, h (normalised)


@dataclass
class YoloDataset:
    root: Path
    items: list[LabelledImage]
    inventory: DatasetInventory


def _parse_label_file(path: Path, inventory: DatasetInventory, num_classes: int | None = None) -> np.ndarray:
    rows: list[list[float]] = []
    limit = num_classes if num_classes else MAX_CLASS_ID + 1
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        inventory.bad_lines.append(f"{path.name}: unreadable ({exc})")
        return np.zeros((0, 5), np.float32)
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{lineno}"
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            inventory.bad_lines.append(f"{where}: not numbers")
            continue
        if len(values) < 5:
            inventory.bad_lines.append(f"{where}: expected 'class cx cy w h', got {len(values)} values")
            continue
        if not all(np.isfinite(values)):
            inventory.bad_lines.append(f"{where}: not finite numbers (nan or inf)")
            continue
        cls = values[0]
        if len(values) > 5:  # a polygon (segment) label: use its bounding box, as YOLOv5 does
            if len(values) % 2 == 0:
                inventory.bad_lines.append(f"{where}: polygon with an odd number of coordinates")
                continue
            xs, ys = np.asarray(values[1::2]), np.asarray(values[2::2])
            values = [
                cls,
                (xs.min() + xs.max()) / 2,
                (ys.min() + ys.max()) / 2,
                xs.max() - xs.min(),
                ys.max() - ys.min(),
            ]
        if cls < 0 or cls != int(cls):
            inventory.bad_lines.append(f"{where}: class {values[0]:g} is not a non-negative integer")
            continue
        if cls >= limit:
            allowed = f"0..{num_classes - 1}, the model's classes" if num_classes else f"below {MAX_CLASS_ID + 1}"
            inventory.bad_lines.append(f"{where}: class {values[0]:g} is out of range ({allowed})")
            continue
        cx, cy, w, h = values[1:5]
        if min(cx, cy, w, h) < 0 or max(cx, cy, w, h) > 1.0 + 1e-6 or w <= 0 or h <= 0:
            inventory.bad_lines.append(f"{where}: box {cx:g} {cy:g} {w:g} {h:g} outside 0..1 (normalised cx cy w h)")
            continue
        rows.append([cls, cx, cy, w, h])
    arr = np.unique(np.asarray(rows, dtype=np.float32).reshape(-1, 5), axis=0)  # duplicates dropped (YOLOv5)
    return arr


def load_dataset(root: str | Path, max_images: int | None = None, num_classes: int | None = None) -> YoloDataset:
    """Read ``root/images`` and ``root/labels`` (or images and .txt side by side).

    Label lines that cannot be used (malformed, not finite, class not below ``num_classes`` when it is
    given, box outside 0..1) are skipped and listed in the inventory; nothing in the folder is fatal.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"dataset folder {root} does not exist")
    img_dir = root / "images" if (root / "images").is_dir() else root
    lbl_dir = root / "labels" if (root / "labels").is_dir() else img_dir
    inventory = DatasetInventory()
    images: dict[str, Path] = {}
    for p in sorted(img_dir.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            images[str(p.relative_to(img_dir).with_suffix(""))] = p
        elif not (p.suffix == ".txt" and lbl_dir == img_dir):
            inventory.other_files.append(p.name)
    labels = {str(p.relative_to(lbl_dir).with_suffix("")): p for p in sorted(lbl_dir.rglob("*.txt")) if p.is_file()}
    inventory.orphan_labels = sorted(labels[k].name for k in labels.keys() - images.keys())
    if lbl_dir != img_dir:
        inventory.other_files += sorted(p.name for p in lbl_dir.rglob("*") if p.is_file() and p.suffix != ".txt")
    if not images:
        raise InputError(f"dataset {root} holds no images ({', '.join(IMAGE_SUFFIXES)}) in {img_dir}")
    items = []
    for key in sorted(images)[:max_images]:
        label_path = labels.get(key)
        arr = _parse_label_file(label_path, inventory, num_classes) if label_path else np.zeros((0, 5), np.float32)
        inventory.images += 1
        inventory.labelled += label_path is not None
        inventory.background += label_path is None
        inventory.boxes += len(arr)
        items.append(LabelledImage(images[key], arr))
    return YoloDataset(root, items, inventory)


def labels_to_xyxy(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    cx, cy, w, h = (labels[:, k] for k in range(1, 5))
    return np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], 1)


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
