"""A run's transfer: for a variant on a cluster node, the object-store and call overhead per call.

Every :class:`~core.runtime.Detector` declares ``node`` (None in this process) and ``transfer_ms`` (empty when
local), so one helper serves any list of detectors: mark where each stands, run, read what was added since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.runtime import Detector


def transfer_marks(detectors: Sequence[Detector]) -> dict[str, int]:
    """Where each remote detector's transfer samples stand now (pooled detectors keep earlier runs' calls)."""
    return {str(d.variant): len(d.transfer_ms) for d in detectors if d.node is not None}


def transfer_since(detectors: Sequence[Detector], marks: dict[str, int]) -> dict[str, list[float]]:
    """Each remote detector's transfer samples since :func:`transfer_marks` gave ``marks``."""
    return {
        str(d.variant): list(d.transfer_ms[marks[str(d.variant)] :])
        for d in detectors
        if d.node is not None and str(d.variant) in marks
    }


def transfer_lines(transfers: dict[str, list[float]], variants: Sequence[object] | None = None) -> list[str]:
    """:func:`transfer_words` for each remote variant with samples (of ``variants`` only, when given)."""
    names = None if variants is None else {str(v) for v in variants}
    return [transfer_words(v, s) for v, s in transfers.items() if s and (names is None or v in names)]


def transfer_stats(samples: Sequence[float]) -> dict[str, float]:
    """What ``--json`` and the pages' downloads give of a remote variant's transfer."""
    from core.measure.metrics import LatencyStats

    stats = LatencyStats.from_samples(list(samples)).to_dict()
    return {k: stats[k] for k in ("p50", "p90", "mean", "max")}


def transfer_words(variant: str, samples: Sequence[float]) -> str:
    """One line on a remote variant's transfer (object store + actor call), which its latency leaves out."""
    a = np.asarray(samples, dtype=np.float64)
    return (
        f"{variant}: transfer to and from its node p50 {np.median(a):.1f} ms (p90 {np.percentile(a, 90):.1f} ms, "
        f"{a.size} calls) — not in its latency, which the node measured"
    )


@dataclass
class TransferWatch:
    """A run's transfer for any list of detectors: ``watch = TransferWatch.start(detectors)``, run, then
    ``watch.samples()`` (per remote variant, this run's calls only; empty when every detector is local)."""

    detectors: Sequence[Detector]
    marks: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, detectors: Sequence[Detector]) -> TransferWatch:
        return cls(list(detectors), transfer_marks(detectors))

    def samples(self) -> dict[str, list[float]]:
        return transfer_since(self.detectors, self.marks)
