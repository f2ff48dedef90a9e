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

from dataclasses import dataclass

import numpy as np

_X = np.linspace(0.0, 1.0, 101)


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
) -> MapDelta:
    """The interval of ``variant - reference`` in mAP50-95 and mAP50 points.

    ``reported`` is (ΔmAP50-95, ΔmAP50) as the evaluation reports them (ultralytics' AP on the whole set). The
    interval is the bootstrap's spread of the difference around its whole-set value, placed on the reported
    one, so interval and estimate always agree.
    """
    n = reference.images
    if variant.images != n:
        raise ValueError("both variants must be evaluated on the same images")
    rng = np.random.default_rng(seed)
    full = np.ones((1, n))
    ref50, ref95 = weighted_map(reference, full)
    var50, var95 = weighted_map(variant, full)
    base50, base95 = (var50 - ref50)[0], (var95 - ref95)[0]
    d50, d95 = [], []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        r50, r95 = weighted_map(reference, weights)
        v50, v95 = weighted_map(variant, weights)
        d50.append(v50 - r50)
        d95.append(v95 - r95)
    s50, s95 = np.concatenate(d50) - base50, np.concatenate(d95) - base95
    rep95, rep50 = (100.0 * x for x in reported)

    def interval(value: float, shifts: np.ndarray) -> Interval:
        lo, hi = np.percentile(100.0 * shifts, [2.5, 97.5])
        return Interval(value, value + float(lo), value + float(hi))

    return MapDelta(interval(rep95, s95), interval(rep50, s50), n, int(reference.target_cls.size), resamples)
