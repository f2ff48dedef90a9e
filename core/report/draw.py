"""Draw detections on images (for the CLI's --save, the dashboard and videos), and videos' side-by-side tiles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.measure import Match, match_detections
from core.runtime import Detections

if TYPE_CHECKING:
    from core.measure import CompareResult, InputImage

# Class colours: ultralytics' palette without its reds, oranges, yellows and greens, so a class box never looks
# like a diff box (green matched, red missed, amber extra; see tests/report/test_draw.py).
_PALETTE = [
    (255, 157, 151), (0, 212, 187), (44, 140, 178), (0, 194, 255), (52, 69, 147), (100, 115, 255),
    (0, 24, 236), (132, 56, 255), (82, 0, 133), (203, 56, 255), (255, 149, 200), (255, 55, 199),
]  # fmt: skip

MATCHED = (40, 200, 80)  # green: found by both
MISSED = (255, 60, 60)  # red: the reference found it, this variant did not
EXTRA = (255, 180, 0)  # amber: only this variant found it


def class_colour(class_id: int) -> tuple[int, int, int]:
    return _PALETTE[class_id % len(_PALETTE)]


def _box(img: np.ndarray, xyxy: np.ndarray, colour: tuple[int, int, int], label: str, thickness: int) -> None:
    x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
    if not label:
        return
    scale = max(0.35, thickness / 3)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thickness // 2))
    top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1
    x1 = max(0, min(x1, img.shape[1] - tw - 2))  # keep the label inside the picture
    cv2.rectangle(img, (x1, top), (x1 + tw + 2, top + th + base + 2), colour, -1)
    cv2.putText(
        img, label, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, thickness // 2),
        cv2.LINE_AA,
    )  # fmt: skip


def _thickness(img: np.ndarray) -> int:
    return max(1, round(sum(img.shape[:2]) / 2 * 0.003))


def annotate(image: np.ndarray, detections: Detections, show_conf: bool = True) -> np.ndarray:
    """A copy of the RGB image with class-coloured boxes and 'name 0.87' labels."""
    img = np.ascontiguousarray(image).copy()
    t = _thickness(img)
    for box, conf, cls in zip(detections.xyxy, detections.confidence, detections.class_id, strict=True):
        label = f"{detections.name_of(int(cls))} {conf:.2f}" if show_conf else detections.name_of(int(cls))
        _box(img, box, class_colour(int(cls)), label, t)
    return img


def annotate_diff(image: np.ndarray, reference: Detections, candidate: Detections, match: Match) -> np.ndarray:
    """Candidate vs reference: matched boxes green, missed (reference only) red, extra (candidate only) amber."""
    img = np.ascontiguousarray(image).copy()
    t = _thickness(img)
    for _, ci in match.pairs:
        _box(img, candidate.xyxy[ci], MATCHED, f"{candidate.name_of(int(candidate.class_id[ci]))}", t)
    for ri in match.missed:
        _box(img, reference.xyxy[ri], MISSED, f"missed {reference.name_of(int(reference.class_id[ri]))}", t)
    for ci in match.extra:
        _box(img, candidate.xyxy[ci], EXTRA, f"extra {candidate.name_of(int(candidate.class_id[ci]))}", t)
    return img


# ---------------------------------------------------------------------------------------------
# side by side (videos)

MAX_TILES = 4  # side_by_side's layouts: one row of 1-4 tiles, or 2x2


def _caption_height(tile_h: int) -> int:
    return max(18, round(tile_h * 0.06))


def _draw_caption(bar: np.ndarray, text: str, colour: tuple[int, int, int] | None = None) -> None:
    h, w = bar.shape[:2]
    left = 4
    if colour is not None:  # the variant's own colour (core.report.colours), as on every chart
        side = max(4, round(h * 0.6))
        top = (h - side) // 2
        bar[top : top + side, 4 : 4 + side] = colour
        left = 8 + side
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = h / 34  # Hershey simplex is ~22 px tall at scale 1: leaves a margin above and below
    thickness = max(1, round(h / 22))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    if tw > w - left - 4:  # a long label on a narrow tile: shrink rather than cut it
        scale *= (w - left - 4) / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    cv2.putText(bar, text, (left, (h + th) // 2), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def side_by_side(
    frames: Sequence[np.ndarray],
    labels: Sequence[str],
    grid: bool | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """Tiles of equally sized RGB frames, each under a dark caption bar with its label.

    One row for 1-3 frames; for 4, a 2x2 grid unless ``grid=False`` (``grid=None`` chooses).
    """
    if not frames or len(frames) != len(labels):
        raise ValueError(f"need one label per frame, got {len(frames)} frames and {len(labels)} labels")
    if len(frames) > MAX_TILES:
        raise ValueError(f"at most {MAX_TILES} frames side by side, got {len(frames)}")
    h, w = frames[0].shape[:2]
    if any(f.shape != frames[0].shape for f in frames):
        raise ValueError(f"frames differ in size: {[f.shape for f in frames]}")
    use_grid = len(frames) == 4 if grid is None else grid and len(frames) == 4
    cols = 2 if use_grid else len(frames)
    rows = 2 if use_grid else 1
    bar = _caption_height(h)
    tile_h = h + bar
    canvas = np.empty((rows * tile_h, cols * w, 3), dtype=np.uint8)
    for i, (frame, label) in enumerate(zip(frames, labels, strict=True)):
        r, c = divmod(i, cols)
        y, x = r * tile_h, c * w
        canvas[y : y + bar, x : x + w] = (32, 32, 32)
        _draw_caption(canvas[y : y + bar, x : x + w], label, colours[i] if colours is not None else None)
        canvas[y + bar : y + tile_h, x : x + w] = frame
    return canvas


def save_images(
    result: CompareResult,
    images: Sequence[InputImage],
    directory: Path,
    write: Callable[[Path, np.ndarray], None] | None = None,
) -> list[Path]:
    """The pictures the page shows: each variant's annotated image and each non-reference variant's diff."""
    from core.report.draw import annotate, annotate_diff

    def save_jpeg(path: Path, rgb: np.ndarray) -> None:
        from PIL import Image

        Image.fromarray(rgb).save(path, quality=92)

    write = write or save_jpeg
    directory.mkdir(parents=True, exist_ok=True)
    by_key = {im.key: im for im in images}
    written = []
    for i, res in enumerate(result.images):
        image = by_key[res.key].image
        stem = f"{i + 1:02d}-{Path(res.name).stem}"
        ref = res.of(result.reference).detections
        for v in res.variants:
            tag = v.variant.replace(":", "-")
            path = directory / f"{stem}.{tag}.jpg"
            write(path, annotate(image, v.detections))
            written.append(path)
            if v.agreement is not None:
                diff = directory / f"{stem}.{tag}.diff.jpg"
                write(diff, annotate_diff(image, ref, v.detections, match_detections(ref, v.detections)))
                written.append(diff)
    return written
