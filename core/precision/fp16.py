"""FP16 range check: which activations would overflow FP16 (largest finite value 65,504), and where FP16 drifts.

Runs the FP32 file and its FP16 file (the one every FP16 variant runs) on the same images with every activation
exposed (:class:`~.drift.ActivationRunner`). Per tensor: the largest magnitude FP32 produces, against FP16's
range; per block: the SQNR of the FP16 file's activations against FP32's. On the CPU, ONNX Runtime computes
many FP16 nodes in FP32 inside, so the drift here is a lower bound of a GPU's; the ranges are the model's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.precision.drift import ActivationRunner, BlockDrift, TensorDrift, accumulate, block_of, rank
from core.progress import Progress, no_progress

FP16_MAX = 65504.0
AT_RISK = FP16_MAX / 16  # within 4 bits of the top: a brighter image or another scene may overflow


@dataclass(frozen=True)
class TensorRange:
    tensor: str
    block: str
    max_abs: float

    @property
    def overflow(self) -> bool:
        return self.max_abs > FP16_MAX

    @property
    def at_risk(self) -> bool:
        return self.max_abs > AT_RISK

    def to_dict(self) -> dict[str, object]:
        return {
            "tensor": self.tensor,
            "block": self.block,
            "max_abs": round(self.max_abs, 3),
            "overflow": self.overflow,
            "at_risk": self.at_risk,
        }


@dataclass(frozen=True)
class Fp16Report:
    images: int
    ranges: list[TensorRange]  # largest first
    tensors: list[TensorDrift]  # FP16 vs FP32, lowest SQNR first
    blocks: list[BlockDrift]

    @property
    def flagged(self) -> list[TensorRange]:
        return [r for r in self.ranges if r.at_risk]

    def summary(self) -> str:
        top = self.ranges[0] if self.ranges else None
        worst = self.blocks[0] if self.blocks else None
        over = sum(r.overflow for r in self.ranges)
        parts = [
            f"{over} tensor(s) overflow FP16" if over else "no activation overflows FP16",
            f"largest |x| {top.max_abs:,.0f} at {top.tensor}" if top else "",
            f"{len(self.flagged)} within 4 bits of its range" if self.flagged else "",
            f"most FP16 drift: {worst.block} {worst.module} {worst.worst_db:.1f} dB" if worst else "",
        ]
        return f"On {self.images} images: " + "; ".join(p for p in parts if p)


def fp16_check(fp32: Path, fp16: Path, inputs: Sequence[np.ndarray], progress: Progress = no_progress) -> Fp16Report:
    """``inputs``: letterboxed NCHW float32 tensors, one image each (run one at a time)."""
    peak: dict[str, float] = {}
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    with ActivationRunner((fp32, fp16)) as runner:
        for i, x in enumerate(inputs):
            progress(i / max(len(inputs), 1), f"FP16 check: image {i + 1}/{len(inputs)}")
            ref, half = runner.run(x)
            for tensor, value in ref.items():
                if not np.issubdtype(value.dtype, np.floating) or value.size == 0:
                    continue
                peak[tensor] = max(peak.get(tensor, 0.0), float(np.max(np.abs(value))))
                other = half.get(tensor)
                if other is not None and other.shape == value.shape and block_of(tensor):
                    accumulate(signal, noise, tensor, value, other)
    ranges = sorted((TensorRange(t, block_of(t), m) for t, m in peak.items()), key=lambda r: -r.max_abs)
    tensors, blocks = rank(signal, noise)
    progress(1.0, "FP16 checked")
    return Fp16Report(len(inputs), ranges, tensors, blocks)
