"""Paired bootstrap over images for the difference in mAP between two variants run on the same images.

Resampling images with replacement is the same as giving each image a weight (how often it was drawn). The
per-image matches (which detection is a true positive at which IoU threshold) are computed once, by the
evaluation; each resample only re-weights them, so no box is matched again. Both variants get the same
weights in a resample (paired), which cancels the variation of the images themselves and leaves the
variation of the difference.

AP per class and threshold is computed as ultralytics computes it (precision envelope, 101-point COCO
interpolation), vectorised over the resamples.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

_X = np.linspace(0.0, 1.0, 101)
# the per-image record's columns: numpy type codes, little-endian (Matches.to_record)
_COLUMNS = (("image", "<i4"), ("class", "<i2"), ("conf", "<f4"), ("tp", "<u2"))


def _pack(values: np.ndarray, column: str) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dict(_COLUMNS)[column]).tobytes()).decode("ascii")


def _unpack(text: str, column: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dict(_COLUMNS)[column])


@dataclass(frozen=True)
class Matches:
    """One variant's matches over a dataset: one row per detection, one entry per ground-truth box."""

    tp: np.ndarray  # (P, T) bool: detection is correct at each IoU threshold
    conf: np.ndarray  # (P,)
    pred_cls: np.ndarray  # (P,) int
    pred_image: np.ndarray  # (P,) int: the image each detection is on
    target_cls: np.ndarray  # (G,) int
    target_image: np.ndarray  # (G,) int
    images: int

    def to_record(self) -> dict[str, Any]:
        """The matches as compact JSON (``eval --json``'s ``per_image``), enough to resample them in another process.

        Per class, detections ranked after its last true positive are left out: they cannot change AP in any
        resample (see :func:`weighted_map`). Each column is base64 of a little-endian array (``columns`` names
        them and their types: the image index, the class, the confidence, and ``tp``, a bit mask over the IoU
        thresholds: bit t set when correct at the t-th), about 16 characters per detection."""
        keep = np.zeros(len(self.conf), dtype=bool)
        hit = self.tp.any(axis=1)
        for c in np.unique(self.pred_cls):
            sel = np.flatnonzero(self.pred_cls == c)
            sel = sel[np.argsort(-self.conf[sel], kind="stable")]
            true = np.flatnonzero(hit[sel])
            if true.size:
                keep[sel[: true[-1] + 1]] = True
        bits = (self.tp[keep].astype(np.int64) << np.arange(self.tp.shape[1])).sum(axis=1)
        return {
            "images": self.images,
            "iou_thresholds": int(self.tp.shape[1]),
            "columns": dict(_COLUMNS),
            "detections": {
                "image": _pack(self.pred_image[keep], "image"),
                "class": _pack(self.pred_cls[keep], "class"),
                "conf": _pack(self.conf[keep], "conf"),
                "tp": _pack(bits, "tp"),
            },
            "labels": {"image": _pack(self.target_image, "image"), "class": _pack(self.target_cls, "class")},
        }

    @classmethod
    def from_record(cls, doc: dict[str, Any]) -> Matches:
        """The inverse of :meth:`to_record` (the detections it left out never count)."""
        det, lab, t = doc["detections"], doc["labels"], int(doc["iou_thresholds"])
        bits = _unpack(det["tp"], "tp").astype(np.int64)
        return cls(
            tp=((bits[:, None] >> np.arange(t)) & 1).astype(bool),
            conf=_unpack(det["conf"], "conf").astype(np.float64),
            pred_cls=_unpack(det["class"], "class").astype(np.int64),
            pred_image=_unpack(det["image"], "image").astype(np.int64),
            target_cls=_unpack(lab["class"], "class").astype(np.int64),
            target_image=_unpack(lab["image"], "image").astype(np.int64),
            images=int(doc["images"]),
        )

    def reordered(self, order: Sequence[int]) -> Matches:
        """The same matches with image ``order[i]`` renumbered ``i`` (to pair two runs that listed images apart)."""
        new = np.empty(len(order), dtype=np.int64)
        new[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        return replace(self, pred_image=new[self.pred_image], target_image=new[self.target_image])


def _interp_rows(xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(_X, xp[r], fp[r])`` for every row r at once (rows of xp non-decreasing, within [0, 1])."""
    rows, length = xp.shape
    offset = 2.0 * np.arange(rows)[:, None]
    flat = (xp + offset).ravel()
    q = (_X[None, :] + offset).ravel()
    j = np.searchsorted(flat, q, side="right") - 1 - (np.arange(rows) * length).repeat(_X.size)
    j = np.clip(j, 0, length - 2).reshape(rows, _X.size)
    x0 = np.take_along_axis(xp, j, 1)
    x1 = np.take_along_axis(xp, j + 1, 1)
    y0 = np.take_along_axis(fp, j, 1)
    y1 = np.take_along_axis(fp, j + 1, 1)
    span = x1 - x0
    t = np.divide(_X[None, :] - x0, span, out=np.zeros_like(span), where=span > 0)
    return y0 + np.clip(t, 0.0, 1.0) * (y1 - y0)


def weighted_map(m: Matches, weights: np.ndarray, eps: float = 1e-16) -> tuple[np.ndarray, np.ndarray]:
    """mAP50 and mAP50-95 for each row of ``weights`` (R, images): the mean over the classes with labels in
    that resample, as ultralytics averages over the classes present."""
    r = weights.shape[0]
    t_count = m.tp.shape[1]
    classes = np.unique(m.target_cls)
    ap = np.zeros((r, len(classes), t_count))
    present = np.zeros((r, len(classes)), dtype=bool)
    for ci, c in enumerate(classes):
        n_gt = weights[:, m.target_image[m.target_cls == c]].sum(axis=1)  # (R,)
        present[:, ci] = n_gt > 0
        sel = np.flatnonzero(m.pred_cls == c)
        if sel.size == 0:
            continue
        sel = sel[np.argsort(-m.conf[sel], kind="stable")]
        tp = m.tp[sel]
        true = np.flatnonzero(tp.any(axis=1))
        if true.size == 0:
            continue
        # Detections ranked after the last true positive only lower the precision below the envelope and never
        # raise the recall: they cannot change AP, so the work stops there (most low-confidence ones).
        sel, tp = sel[: true[-1] + 1], tp[: true[-1] + 1]
        w = weights[:, m.pred_image[sel]].astype(np.float32)  # (R, P_c)
        seen = np.cumsum(w, axis=1)
        for t in range(t_count):
            hit_rows = np.flatnonzero(tp[:, t])
            if hit_rows.size == 0:
                continue
            end = hit_rows[-1] + 1
            hits = np.cumsum(w[:, :end] * tp[:end, t], axis=1)
            recall = hits / (n_gt[:, None] + eps)
            precision = hits / np.maximum(seen[:, :end], eps)
            ones, zeros = np.ones((r, 1)), np.zeros((r, 1))
            mrec = np.concatenate([zeros, recall, recall[:, -1:], ones], axis=1)
            mpre = np.concatenate([ones, precision, zeros, zeros], axis=1)
            mpre = np.flip(np.maximum.accumulate(np.flip(mpre, 1), axis=1), 1)
            ap[:, ci, t] = np.trapezoid(_interp_rows(mrec, mpre), _X, axis=1)
    counts = np.maximum(present.sum(axis=1), 1)
    map50 = (ap[:, :, 0] * present).sum(axis=1) / counts
    map50_95 = (ap.mean(axis=2) * present).sum(axis=1) / counts
    return map50, map50_95


@dataclass(frozen=True)
class Interval:
    value: float  # the difference on the whole set, in points
    lo: float
    hi: float

    @property
    def holds_zero(self) -> bool:
        return self.lo <= 0.0 <= self.hi

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"value": round(self.value, 3), "ci95": [round(self.lo, 3), round(self.hi, 3)]}

    def words(self) -> str:
        return f"{self.value:+.2f} points ({self.lo:+.2f} to {self.hi:+.2f})"


@dataclass(frozen=True)
class MapDelta:
    """A variant's mAP minus the reference's, in points (x100), with 95 % paired bootstrap intervals."""

    map50_95: Interval
    map50: Interval
    images: int
    boxes: int
    resamples: int

    @classmethod
    def between_runs(
        cls,
        before: dict[str, Any],
        after: dict[str, Any],
        images_before: Sequence[str],
        images_after: Sequence[str],
        resamples: int = 1000,
    ) -> tuple[MapDelta, bool]:
        """One variant's mAP in two runs (``per_image`` records of ``eval --json``): ``after - before`` in points.

        Paired over images (the same weights for both runs in each resample) when both ran the same images,
        whatever their order; otherwise each run is resampled on its own (unpaired: wider, as it must be).
        The value is the whole-set mAP recomputed from the records. Returns the delta and whether it was paired.
        """
        a, b = Matches.from_record(before), Matches.from_record(after)
        paired = len(images_before) == a.images and sorted(images_before) == sorted(images_after)
        paired = paired and len(set(images_before)) == len(images_before) and b.images == a.images
        if paired:
            where = {name: i for i, name in enumerate(images_before)}
            b = b.reordered([where[name] for name in images_after])
        full_a, full_b = np.ones((1, a.images)), np.ones((1, b.images))
        a50, a95 = weighted_map(a, full_a)
        b50, b95 = weighted_map(b, full_b)
        reported = (float(b95[0] - a95[0]), float(b50[0] - a50[0]))
        return paired_delta(a, b, reported, resamples, paired=paired), paired

    def to_dict(self) -> dict[str, object]:
        return {
            "map50_95_points": self.map50_95.to_dict(),
            "map50_points": self.map50.to_dict(),
            "images": self.images,
            "boxes": self.boxes,
            "resamples": self.resamples,
        }


def paired_delta(
    reference: Matches,
    variant: Matches,
    reported: tuple[float, float],
    resamples: int = 1000,
    seed: int = 0,
    chunk: int = 250,
    paired: bool = True,
) -> MapDelta:
    """The interval of ``variant - reference`` in mAP50-95 and mAP50 points.

    ``reported`` is (ΔmAP50-95, ΔmAP50) as the evaluation reports them (ultralytics' AP on the whole set). The
    interval is the bootstrap's spread of the difference around its whole-set value, placed on the reported
    one, so interval and estimate always agree.

    ``paired`` False (two runs on different images): each side gets its own resampling weights.
    """
    n, m = reference.images, variant.images
    if paired and m != n:
        raise ValueError("both variants must be evaluated on the same images")
    rng = np.random.default_rng(seed)
    ref50, ref95 = weighted_map(reference, np.ones((1, n)))
    var50, var95 = weighted_map(variant, np.ones((1, m)))
    base50, base95 = (var50 - ref50)[0], (var95 - ref95)[0]
    d50, d95 = [], []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        other = weights if paired else rng.multinomial(m, np.full(m, 1.0 / m), size=size).astype(np.float64)
        r50, r95 = weighted_map(reference, weights)
        v50, v95 = weighted_map(variant, other)
        d50.append(v50 - r50)
        d95.append(v95 - r95)
    s50, s95 = np.concatenate(d50) - base50, np.concatenate(d95) - base95
    rep95, rep50 = (100.0 * x for x in reported)

    def interval(value: float, shifts: np.ndarray) -> Interval:
        lo, hi = np.percentile(100.0 * shifts, [2.5, 97.5])
        return Interval(value, value + float(lo), value + float(hi))

    return MapDelta(interval(rep95, s95), interval(rep50, s50), n, int(reference.target_cls.size), resamples)
