"""Latency statistics and agreement between two variants' detections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from core.runtime import Detections, box_iou
from core.tables import Column


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of per-call latency in milliseconds."""

    count: int
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float
    std: float

    @property
    def fps(self) -> float:
        return 1000.0 / self.mean if self.mean > 0 else 0.0

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            return cls(0, *(float("nan"),) * 8)
        p50, p90, p95, p99 = (float(x) for x in np.percentile(a, [50, 90, 95, 99]))
        return cls(int(a.size), p50, p90, p95, p99, float(a.mean()), float(a.min()), float(a.max()), float(a.std()))

    def to_dict(self, ndigits: int = 3) -> dict[str, float]:
        return {k: (round(v, ndigits) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def median_interval(samples_ms: Sequence[float]) -> tuple[float, float]:
    """A distribution-free 95 % interval for the median (order statistics, normal approximation of the
    binomial): no assumption on how latencies are distributed. With 5 runs it is [min, max]."""
    a = np.sort(np.asarray(samples_ms, dtype=np.float64))
    n = a.size
    if n == 0:
        return float("nan"), float("nan")
    half = 1.959963984540054 * np.sqrt(n) / 2
    lo = int(np.clip(np.floor(n / 2 - half), 0, n - 1))
    hi = int(np.clip(np.ceil(n / 2 + half), 0, n - 1))
    return float(a[lo]), float(a[hi])


@dataclass(frozen=True)
class LatencySpread:
    """The median of repeated timed runs, how far they spread (p10-p90) and an interval for the median, in ms."""

    p50: float
    p10: float
    p90: float
    runs: int
    lo: float = float("nan")  # 95 % interval for the median (see median_interval)
    hi: float = float("nan")
    samples: tuple[float, ...] = field(default=(), repr=False, compare=False)  # for speed-up intervals

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencySpread:
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        p10, p50, p90 = (float(x) for x in np.percentile(a, [10, 50, 90]))
        return cls(p50, p10, p90, int(a.size), *median_interval(a), tuple(float(x) for x in a))

    @property
    def fps(self) -> float:
        """Images per second at the median latency: the statistic speed-ups are computed from too."""
        return 1000.0 / self.p50 if self.p50 > 0 else 0.0

    def to_dict(self, ndigits: int = 3) -> dict[str, float | int]:
        return {
            "p50": round(self.p50, ndigits),
            "p10": round(self.p10, ndigits),
            "p90": round(self.p90, ndigits),
            "runs": self.runs,
        }


@dataclass(frozen=True)
class Speedup:
    """How much faster ``other`` runs than ``base``: the ratio of medians and its 95 % interval. When the
    interval holds 1, the difference is not measurable with these runs: say so rather than rank them."""

    value: float
    lo: float
    hi: float

    @classmethod
    def of(cls, base: LatencySpread, other: LatencySpread, resamples: int = 2000, seed: int = 0) -> Speedup:
        """Ratio of the medians; its 95 % interval by bootstrap (each variant's runs resampled, seeded), or, without
        the runs, the widest ratio the two medians' intervals allow."""
        value = base.p50 / other.p50
        if len(base.samples) < 3 or len(other.samples) < 3:
            return cls(value, base.lo / other.hi, base.hi / other.lo)
        rng = np.random.default_rng(seed)
        a, b = np.asarray(base.samples), np.asarray(other.samples)
        ma = np.median(a[rng.integers(0, a.size, (resamples, a.size))], axis=1)
        mb = np.median(b[rng.integers(0, b.size, (resamples, b.size))], axis=1)
        lo, hi = np.percentile(ma / mb, [2.5, 97.5])
        return cls(value, float(lo), float(hi))

    @property
    def measurable(self) -> bool:
        return not (self.lo <= 1.0 <= self.hi)

    def words(self, reference: str = "") -> str:
        """One convention everywhere: the speed-up and its interval first, then what it means, e.g.
        "1.22x (1.15-1.30x) — faster", "0.50x (0.39-0.79x) — slower than ort:fp32",
        "no measurable difference (0.97-1.04x)"."""
        span = f"{self.lo:.2f}-{self.hi:.2f}x"
        than = f" than {reference}" if reference else ""
        if not self.measurable:
            return (
                f"no measurable speed difference from {reference} ({span})"
                if reference
                else (f"no measurable difference ({span})")
            )
        return f"{self.value:.2f}x ({span}) — {'faster' if self.value > 1 else 'slower'}{than}"

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "value": round(self.value, 3),
            "range": [round(self.lo, 3), round(self.hi, 3)],
            "measurable": self.measurable,
        }


@dataclass(frozen=True)
class Agreement:
    """How a variant's detections compare with a reference variant's on the same images.

    matched: same class and IoU >= threshold (each reference box used once, best confidence first);
    missed: reference boxes with no match; extra: variant boxes with no match.
    """

    matched: int
    missed: int
    extra: int
    mean_abs_dconf: float  # over matched pairs
    mean_iou: float  # over matched pairs

    @property
    def reference_count(self) -> int:
        return self.matched + self.missed

    @property
    def recall(self) -> float:
        """Share of the reference's boxes the variant reproduces."""
        return self.matched / self.reference_count if self.reference_count else 1.0

    @property
    def precision(self) -> float:
        total = self.matched + self.extra
        return self.matched / total if total else 1.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "matched": self.matched,
            "missed": self.missed,
            "extra": self.extra,
            "mean_abs_dconf": round(self.mean_abs_dconf, 4),
            "mean_iou": round(self.mean_iou, 4),
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
        }


AGREEMENT_COLUMNS = (Column("matched"), Column("missed"), Column("extra"), Column("mean |Δconf|", 4))


def agreement_cells(a: Agreement | None) -> tuple[int | None, int | None, int | None, float | None]:
    """The cells under :data:`AGREEMENT_COLUMNS`; empty for the reference itself."""
    return (a.matched, a.missed, a.extra, a.mean_abs_dconf) if a is not None else (None, None, None, None)


@dataclass(frozen=True)
class Match:
    """Index pairs (reference, candidate) that agree, plus the unmatched indices of each side."""

    pairs: np.ndarray  # (K, 2) int
    missed: np.ndarray  # reference indices
    extra: np.ndarray  # candidate indices
    ious: np.ndarray  # (K,)


def match_detections(reference: Detections, candidate: Detections, iou_threshold: float = 0.5) -> Match:
    """Greedy one-to-one matching, candidate boxes in descending confidence, same class only."""
    iou = box_iou(candidate.xyxy, reference.xyxy)
    if iou.size:
        iou = iou * (candidate.class_id[:, None] == reference.class_id[None, :])
    used = np.zeros(len(reference), dtype=bool)
    pairs: list[tuple[int, int]] = []
    ious: list[float] = []
    for ci in np.argsort(-candidate.confidence, kind="stable"):
        if len(reference) == 0:
            break
        row = np.where(used, -1.0, iou[ci])
        ri = int(row.argmax())
        if row[ri] >= iou_threshold:
            used[ri] = True
            pairs.append((ri, int(ci)))
            ious.append(float(row[ri]))
    pair_arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    extra = np.setdiff1d(np.arange(len(candidate)), pair_arr[:, 1])
    return Match(pair_arr, np.flatnonzero(~used), extra, np.asarray(ious, dtype=np.float32))


def agreement(reference: Detections, candidate: Detections, iou_threshold: float = 0.5) -> Agreement:
    return merge_agreements([agreement_parts(reference, candidate, iou_threshold)])


def agreement_parts(ref: Detections, cand: Detections, thr: float) -> tuple[int, int, int, float, float]:
    m = match_detections(ref, cand, thr)
    dconf = np.abs(ref.confidence[m.pairs[:, 0]] - cand.confidence[m.pairs[:, 1]]).sum() if len(m.pairs) else 0.0
    return len(m.pairs), len(m.missed), len(m.extra), float(dconf), float(m.ious.sum())


def merge_agreements(parts: Iterable[tuple[int, int, int, float, float]]) -> Agreement:
    matched = missed = extra = 0
    dconf = iou = 0.0
    for m, mi, e, d, i in parts:
        matched, missed, extra, dconf, iou = matched + m, missed + mi, extra + e, dconf + d, iou + i
    return Agreement(matched, missed, extra, dconf / matched if matched else 0.0, iou / matched if matched else 0.0)


def agreement_over(
    references: Sequence[Detections], candidates: Sequence[Detections], iou_threshold: float = 0.5
) -> Agreement:
    """Agreement summed over many images (pairs of detections for the same image)."""
    if len(references) != len(candidates):
        raise ValueError(f"{len(references)} reference results but {len(candidates)} candidate results")
    return merge_agreements(agreement_parts(r, c, iou_threshold) for r, c in zip(references, candidates, strict=True))


def pareto_front(latency: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """Which points are not dominated (no other point is at least as fast and as accurate, and better in one)."""
    pts = list(zip(latency, accuracy, strict=True))
    return [
        not any((lo <= la and ao >= aa) and (lo < la or ao > aa) for j, (lo, ao) in enumerate(pts) if j != i)
        for i, (la, aa) in enumerate(pts)
    ]
