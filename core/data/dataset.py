"""Labelled sets in YOLO format: ``images/`` + ``labels/`` (one ``class cx cy w h`` line per box, normalised).

Where the images and labels are is worked out by :mod:`core.data.layout` (flat folders, the ultralytics
split layout, data.yaml, zips). Problems are counted and listed in a :class:`DatasetInventory`, never fatal:
bad label lines, orphan labels, unreadable images, other files. One is: no label file for any image
(it would score a silent zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.layout import LAYOUT_HINT, FolderSource, ListSource, label_file_for, resolve_layout
from core.errors import InputError
from core.formats import IMAGE_SUFFIXES

# Without the model's class count, class ids above this are refused (they are exact in float32 below 2**24).
MAX_CLASS_ID = 9999
# Fewer images than this share with a label file: said in DatasetInventory.pairing_warning (not an error).
MIN_PAIRED = 0.9


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
    label_dirs: list[str] = field(default_factory=list)  # where labels were looked for, in words

    @property
    def pairing_warning(self) -> str | None:
        """One line when fewer than MIN_PAIRED of the images have a label file (None otherwise)."""
        if not self.images or self.labelled >= MIN_PAIRED * self.images:
            return None
        return (
            f"only {self.labelled} of {self.images} images ({100 * self.labelled / self.images:.0f} %) have a label "
            f"file (looked in {' and '.join(self.label_dirs) or 'the dataset'}); the other {self.background} are "
            "scored as background, with nothing to find: check the labels are where YOLO looks for them"
        )

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
    root: Path  # what was given: a folder, a data.yaml, a .zip
    items: list[LabelledImage]
    inventory: DatasetInventory
    names: tuple[str, ...] | None = None  # class names from a data.yaml (compare: names_mismatch)
    layout: str = ""  # how ``root`` was read, in words ("" for a plain folder)

    def names_mismatch(self, model_names: tuple[str, ...] | list[str]) -> str | None:
        return names_mismatch(self.names, model_names)


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
    """Read a labelled set from ``root``: a folder, an ultralytics data.yaml, a .txt of image paths or a .zip
    (the layouts accepted: :mod:`core.data.layout`).

    Label lines that cannot be used (malformed, not finite, class not below ``num_classes`` when it is
    given, box outside 0..1) are skipped and listed in the inventory, and so are orphan labels and other
    files. A set with images but no label file for any of them is refused (:class:`InputError` naming
    where labels were looked for): it would score a silent zero. Fewer than
    :data:`MIN_PAIRED` of the images with a label file is allowed but said in ``inventory.pairing_warning``.
    """
    given = Path(root).expanduser()
    layout = resolve_layout(given)
    inventory = DatasetInventory()
    pairs: list[tuple[Path, Path | None]] = []
    for source in layout.sources:
        if isinstance(source, FolderSource):
            pairs += _scan_folder(source, inventory)
        else:
            pairs += _scan_listing(source, inventory)
    if not pairs:
        where = ", ".join(str(s.images if isinstance(s, FolderSource) else s.listing) for s in layout.sources)
        raise InputError(f"dataset {given} holds no images ({', '.join(IMAGE_SUFFIXES)}) in {where}")
    looked = " and ".join(inventory.label_dirs)
    if not any(label for _, label in pairs):
        raise InputError(f"no label files for the {len(pairs)} images: looked in {looked} ({LAYOUT_HINT})")
    chosen = pairs[:max_images]
    if not any(label for _, label in chosen):
        labelled = sum(label is not None for _, label in pairs)
        raise InputError(
            f"none of the first {len(chosen)} images (by name) has a label file, though {labelled} of the "
            f"{len(pairs)} do: use more images, or label these (labels looked for in {looked})"
        )
    items = []
    for image, label_path in chosen:
        arr = _parse_label_file(label_path, inventory, num_classes) if label_path else np.zeros((0, 5), np.float32)
        inventory.images += 1
        inventory.labelled += label_path is not None
        inventory.background += label_path is None
        inventory.boxes += len(arr)
        items.append(LabelledImage(image, arr))
    return YoloDataset(given, items, inventory, names=layout.names, layout=layout.described)


def _scan_folder(source: FolderSource, inventory: DatasetInventory) -> list[tuple[Path, Path | None]]:
    """The images under ``source.images`` with their label files, matched on the path below the two folders."""
    img_dir, lbl_dir = source.images, source.labels
    inventory.label_dirs += source.looked_in
    images: dict[str, Path] = {}
    for p in sorted(img_dir.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            images[str(p.relative_to(img_dir).with_suffix(""))] = p
        elif not (p.suffix == ".txt" and lbl_dir == img_dir):
            inventory.other_files.append(p.name)
    labels = {str(p.relative_to(lbl_dir).with_suffix("")): p for p in sorted(lbl_dir.rglob("*.txt")) if p.is_file()}
    inventory.orphan_labels += sorted(labels[k].name for k in labels.keys() - images.keys())
    if lbl_dir != img_dir:
        inventory.other_files += sorted(p.name for p in lbl_dir.rglob("*") if p.is_file() and p.suffix != ".txt")
    return [(images[key], labels.get(key)) for key in sorted(images)]


def _scan_listing(source: ListSource, inventory: DatasetInventory) -> list[tuple[Path, Path | None]]:
    """The images a .txt lists (missing ones listed as unreadable); no orphan count: a list may name a subset."""
    pairs: list[tuple[Path, Path | None]] = []
    dirs: dict[str, None] = {}
    for image in source.files:
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            inventory.other_files.append(image.name)
            continue
        if not image.is_file():
            inventory.unreadable_images.append(f"{image.name} (listed in {source.listing.name}, not found)")
            continue
        label = label_file_for(image)
        dirs[str(label.parent)] = None
        pairs.append((image, label if label.is_file() else None))
    inventory.label_dirs += [d for d in dirs if d not in inventory.label_dirs]
    return pairs


def names_mismatch(dataset_names: tuple[str, ...] | None, model_names: tuple[str, ...] | list[str]) -> str | None:
    """Why the dataset's class names (a data.yaml's ``names``) and the model's disagree; None when they agree.

    Labels are scored by class id, so names that differ mean the scores compare different things. A
    dataset naming fewer classes agrees when its names are the model's first ones (a subset of its ids).
    Names compare ignoring case, surrounding space and ``_`` versus space. No dataset names: None.
    """
    if not dataset_names:
        return None

    def norm(name: str) -> str:
        return " ".join(str(name).replace("_", " ").casefold().split())

    ours, theirs = [norm(n) for n in dataset_names], [norm(n) for n in model_names]
    if len(ours) > len(theirs):
        extra = ", ".join(dataset_names[len(theirs) : len(theirs) + 5])
        return (
            f"the dataset names {len(ours)} classes but the model predicts {len(theirs)}: labels of classes "
            f"{len(theirs)} and above ({extra}{'…' if len(ours) > len(theirs) + 5 else ''}) can never be found"
        )
    wrong = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b]
    if not wrong:
        return None
    shown = "; ".join(f"{i}: {dataset_names[i]!r} vs {model_names[i]!r}" for i in wrong[:3])
    more = f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""
    return (
        f"class names differ between the dataset and the model at {len(wrong)} of {len(ours)} ids — {shown}{more}: "
        "labels are scored by class id, so the scores compare different classes"
    )


def labels_to_xyxy(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    cx, cy, w, h = (labels[:, k] for k in range(1, 5))
    return np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], 1)
