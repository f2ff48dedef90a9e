"""Fidelity: how closely an INT8 candidate's detections follow FP32's on the same images, with no labels.

The explorer ranks recipes by it (labels only confirm the one it chooses): a user rarely has thousands of labelled
images, but has thousands of unlabelled ones, and a paired difference over 500 images can tell tenths apart where
a labelled mAP difference over 64 cannot.

**The signal** (chosen by measurement, ``bench/fidelity_signal.py``, README "The precision explorer"): FP32's
detections at the user's settings (conf 0.25, IoU 0.45) are the reference; the candidate's, at the same settings,
are matched to them one to one (same class, IoU >= 0.5, core.measure.match_detections). Per image: twice the
summed IoU of the matched pairs, over the boxes of both sides. Pooled over the images,

    fidelity = 100 x sum(2 x IoU of matched pairs) / sum(FP32's boxes + the candidate's boxes)

is 100 for FP32 itself, loses a point for every percent of boxes missed or added, and less for boxes that moved.
A difference between two candidates (or against FP32) comes with a 95 % paired bootstrap interval over images.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import InputError
from core.measure import Interval, match_detections
from core.progress import Progress, no_progress
from core.runtime import Detections, Detector, PostParams

FIDELITY_PARAMS = PostParams(conf=0.25, iou=0.45)  # what a user sees: FP32's detections there are the reference
DEFAULT_FIDELITY_IMAGES = 500
MIN_FIDELITY_IMAGES = 256  # fewer: the intervals are wider, and the result says so
RESAMPLES = 2000
FIDELITY_WORDS = (
    "agreement with FP32's detections at conf 0.25 (matched boxes, same class and IoU >= 0.5, weighted by their IoU, "
    "over the boxes of both: FP32 = 100), no labels"
)
FIT = 640  # images are kept at most this long a side: what the letterbox makes of them anyway


@dataclass(frozen=True)
class FidelityScores:
    """One candidate's agreement with FP32, image by image (the bootstrap resamples images)."""

    overlap: np.ndarray  # per image: 2 x summed IoU of the matched pairs
    boxes: np.ndarray  # per image: FP32's boxes + the candidate's
    matched: int
    missed: int  # FP32 boxes the candidate does not find
    extra: int  # candidate boxes FP32 does not have

    @property
    def value(self) -> float:
        """Fidelity in points (FP32: 100)."""
        total = float(self.boxes.sum())
        return 100.0 * float(self.overlap.sum()) / total if total else 100.0

    @property
    def images(self) -> int:
        return len(self.boxes)


def versus(reference: FidelityScores | None, candidate: FidelityScores, seed: int = 0) -> Interval:
    """``candidate`` minus ``reference`` in fidelity points, with its 95 % paired bootstrap interval over images
    (``reference`` None: FP32 itself, 100 on every resample)."""
    n = candidate.images
    if reference is not None and reference.images != n:
        raise ValueError("both candidates must be scored on the same images")
    weights = _weights(n, seed)

    def pooled(s: FidelityScores) -> np.ndarray:
        return 100.0 * (weights @ s.overlap) / np.maximum(weights @ s.boxes, 1e-9)

    base = candidate.value - (100.0 if reference is None else reference.value)
    spread = pooled(candidate) - (100.0 if reference is None else pooled(reference))
    lo, hi = np.percentile(spread, [2.5, 97.5])
    return Interval(base, float(lo), float(hi))


@functools.lru_cache(maxsize=4)
def _weights(n: int, seed: int) -> np.ndarray:
    """The bootstrap's resamples of ``n`` images (how often each is drawn), the same for every comparison."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=RESAMPLES).astype(np.float64)


def agreement_parts(reference: Detections, candidate: Detections) -> tuple[float, int, int, int, int]:
    """(2 x summed IoU, boxes of both, matched, missed, extra) for one image."""
    m = match_detections(reference, candidate, 0.5)
    return 2.0 * float(m.ious.sum()), len(reference) + len(candidate), len(m.pairs), len(m.missed), len(m.extra)


class FidelitySet:
    """Unlabelled images and FP32's detections on them: every candidate is scored against the same reference."""

    def __init__(self, images: Sequence[np.ndarray], source: str, fp32: Detector, progress: Progress = no_progress):
        if not images:
            raise InputError("no images to measure fidelity on")
        self.images = list(images)
        self.source = source
        self.reference: list[Detections] = []
        for i, image in enumerate(self.images):
            self.reference.append(fp32.detect(image, FIDELITY_PARAMS).detections)
            if i % 25 == 0:
                progress(i / len(self.images), f"FP32 on the fidelity images: {i}/{len(self.images)}")
        progress(1.0, "FP32 reference ready")

    def __len__(self) -> int:
        return len(self.images)

    def score(self, det: Detector, progress: Progress = no_progress) -> FidelityScores:
        overlap = np.zeros(len(self.images))
        boxes = np.zeros(len(self.images))
        matched = missed = extra = 0
        for i, (image, ref) in enumerate(zip(self.images, self.reference, strict=True)):
            got = det.detect(image, FIDELITY_PARAMS).detections
            o, b, ma, mi, ex = agreement_parts(ref, got)
            overlap[i], boxes[i] = o, b
            matched, missed, extra = matched + ma, missed + mi, extra + ex
            if i % 50 == 0:
                progress(i / len(self.images), f"fidelity {i}/{len(self.images)}")
        return FidelityScores(overlap, boxes, matched, missed, extra)


def fit(image: np.ndarray, side: int = FIT) -> np.ndarray:
    """Shrunk so its long side is ``side``, as the letterbox would (same size, same interpolation), so the detector
    sees the same pixels while hundreds of frames fit in memory."""
    h, w = image.shape[:2]
    r = min(side / h, side / w)
    if r >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * r)), max(1, round(h * r))), interpolation=cv2.INTER_LINEAR)


def video_frames(clip: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread evenly over ``clip`` (all of them when it has fewer)."""
    from core.video import iter_frames, probe

    total = max(probe(clip).frame_count, 1)
    step = max(1, total // count)
    out = []
    for i, frame in enumerate(iter_frames(clip)):
        if i % step == 0:
            out.append(fit(frame))
            if len(out) >= count:
                break
    return out


def fidelity_files(
    count: int,
    *,
    folder: Path | None = None,
    calib_dir: Path | None = None,
    calib_used: int = 0,
    labelled: Sequence[Path] = (),
) -> tuple[list[Path], str]:
    """The image files fidelity is measured on (no clip given), and where they came from, in words: ``folder``'s
    (never those calibration uses, when it is the calibration folder), else the calibration folder's images after
    the ``calib_used`` that calibration reads, topped up, when they are fewer than :data:`MIN_FIDELITY_IMAGES`,
    with the labelled set's images (their labels unused)."""
    from core.model import list_images

    if count < 1:
        raise InputError(f"the fidelity image count must be at least 1, got {count}")
    calib = list_images(calib_dir) if calib_dir is not None else []
    used = set(calib[:calib_used])
    if folder is not None:
        files = [f for f in list_images(folder) if f not in used][:count]
        return files, f"{len(files)} images of {folder.name}" + (" (none that calibration uses)" if used else "")
    files = calib[calib_used:][:count]
    name = calib_dir.name if calib_dir is not None else "(none)"
    words = f"{len(files)} images of the calibration folder {name} that calibration does not use"
    if len(files) < min(count, MIN_FIDELITY_IMAGES) and labelled:
        more = [p for p in labelled if p not in used][: count - len(files)]
        files += more
        words += f", and {len(more)} of the labelled set's images (their labels unused)"
    return files, words


def fidelity_images(
    count: int,
    *,
    video: Path | None = None,
    folder: Path | None = None,
    calib_dir: Path | None = None,
    calib_used: int = 0,
    labelled: Sequence[Path] = (),
    progress: Progress = no_progress,
) -> tuple[list[np.ndarray], str]:
    """The unlabelled images fidelity is measured on, decoded (``video``: frames spread over the clip; else
    :func:`fidelity_files`), and where they came from, in words."""
    from core.data import load_image

    if count < 1:
        raise InputError(f"the fidelity image count must be at least 1, got {count}")
    if video is not None:
        progress(0.0, f"decoding {count} frames of {video.name}")
        frames = video_frames(video, count)
        return frames, f"{len(frames)} frames spread over {video.name}"
    files, words = fidelity_files(count, folder=folder, calib_dir=calib_dir, calib_used=calib_used, labelled=labelled)
    images = []
    for i, f in enumerate(files):
        try:
            images.append(fit(load_image(f)))
        except InputError:
            continue
        if i % 50 == 0:
            progress(i / max(len(files), 1), f"reading fidelity images {i}/{len(files)}")
    return images, words
