"""Labelled sets in YOLO format: ``images/`` + ``labels/`` (one ``class cx cy w h`` line per box, normalised).

Problems are counted and listed in a :class:`DatasetInventory`, never fatal: bad label lines, orphan labels,
unreadable images, other files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.formats import IMAGE_SUFFIXES

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
