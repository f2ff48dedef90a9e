"""Layer drift: run FP32 and a quantized model on the same images and rank where their activations part.

ONNX Runtime's ``qdq_loss_debug`` does the graph work: it adds every activation of both models to their
outputs and pairs each quantized tensor with its FP32 twin. We run one image at a time (all activations of
YOLOv5n at 640 are ~0.75 GB an image) and accumulate, per tensor, ``Σ‖x‖²`` and ``Σ‖x − x̂‖²`` over the
images: the signal-to-quantization-noise ratio ``10·log10(Σ‖x‖² / Σ‖x − x̂‖²)`` dB is then exactly the one
``qdq_loss_debug.compute_signal_to_quantization_noice_ratio`` gives on all images at once. Drift is
cumulative: a tensor's figure includes what the layers before it lost. Low dB = far from FP32. Blocks
the recipe keeps in float (the Detect convs by default) have no quantized tensor, hence no entry.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.progress import Progress, no_progress
from core.runtime import module_of
from core.tables import Column, Table

_SAVED = "_ReshapedSavedOutput"  # what qdq_loss_debug appends to the tensors it adds as outputs
_BLOCK = re.compile(r"/?(model\.\d+)/")


def block_of(tensor: str) -> str:
    """``/model.23/m/m.0/cv1/act/Mul_output_0`` -> ``model.23``; "" for a tensor outside the blocks."""
    m = _BLOCK.match(tensor)
    return m.group(1) if m else ""


_module = module_of  # what a block is: Conv, C3, SPPF, Upsample, Concat, Detect


@dataclass(frozen=True)
class TensorDrift:
    tensor: str
    block: str
    sqnr_db: float


@dataclass(frozen=True)
class BlockDrift:
    block: str  # model.N
    module: str  # Conv, C3, SPPF, Upsample, Concat, Detect
    worst_db: float  # the block's lowest SQNR
    worst_tensor: str
    tensors: int


@dataclass(frozen=True)
class DriftReport:
    model: str
    quantized: str
    images: int
    tensors: list[TensorDrift]  # lowest SQNR first
    blocks: list[BlockDrift]  # lowest worst SQNR first

    def table(self) -> Table:
        columns = (Column("block"), Column("module"), Column("worst SQNR dB", 1), Column("at tensor"),
                   Column("tensors"))  # fmt: skip
        rows = [(b.block, b.module, b.worst_db, b.worst_tensor, b.tensors) for b in self.blocks]
        note = (
            f"SQNR of {self.quantized}'s activations against {self.model}'s on {self.images} images "
            "(onnxruntime qdq_loss_debug pairing); cumulative: includes what earlier layers lost; lowest first"
        )
        return Table(columns, rows, (note,))


class ActivationRunner:
    """Sessions that return every intermediate activation of each model (qdq_loss_debug's augmentation),
    run one input at a time; :meth:`run` gives ``{tensor: array}`` per model, named as in the model."""

    def __init__(self, models: Sequence[Path]) -> None:
        self._models = list(models)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._sessions: list[object] = []

    def __enter__(self) -> ActivationRunner:
        import onnxruntime as ort
        from onnxruntime.quantization.qdq_loss_debug import modify_model_output_intermediate_tensors

        self._tmp = tempfile.TemporaryDirectory(prefix="yololab-acts-")
        for i, path in enumerate(self._models):
            augmented = Path(self._tmp.name) / f"model{i}.onnx"
            modify_model_output_intermediate_tensors(str(path), str(augmented))
            so = ort.SessionOptions()
            so.log_severity_level = 3
            self._sessions.append(ort.InferenceSession(str(augmented), so, providers=["CPUExecutionProvider"]))
        return self

    def run(self, x: np.ndarray) -> list[dict[str, np.ndarray]]:
        out = []
        for session in self._sessions:
            names = [o.name for o in session.get_outputs()]  # type: ignore[attr-defined]
            values = session.run(None, {session.get_inputs()[0].name: x})  # type: ignore[attr-defined]
            out.append({n.removesuffix(_SAVED): v for n, v in zip(names, values, strict=True) if n.endswith(_SAVED)})
        return out

    def __exit__(self, *exc: object) -> None:
        self._sessions.clear()
        if self._tmp is not None:
            self._tmp.cleanup()


def accumulate(signal: dict[str, float], noise: dict[str, float], tensor: str, ref: object, got: object) -> None:
    """Add one image's ``Σ‖x‖²`` and ``Σ‖x − x̂‖²`` of ``tensor`` (computed in float64)."""
    r = np.asarray(ref, np.float64).ravel()
    d = r - np.asarray(got, np.float64).ravel()
    signal[tensor] = signal.get(tensor, 0.0) + float(r @ r)
    noise[tensor] = noise.get(tensor, 0.0) + float(d @ d)


def sqnr_db(signal: float, noise: float) -> float:
    eps = np.finfo(float).eps
    return 10 * math.log10(max(signal, eps) / max(noise, eps))


def layer_drift(
    fp32: Path, quantized: Path, inputs: Sequence[np.ndarray], progress: Progress = no_progress
) -> DriftReport:
    """Drift of ``quantized`` from ``fp32`` on ``inputs`` (letterboxed NCHW float32 tensors, one image each)."""
    from onnxruntime.quantization.qdq_loss_debug import create_activation_matching

    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    with ActivationRunner((fp32, quantized)) as runner:
        for i, x in enumerate(inputs):
            progress(i / max(len(inputs), 1), f"image {i + 1}/{len(inputs)}")
            ref_acts, q_acts = runner.run(x)
            matched = create_activation_matching(
                {k: [v] for k, v in q_acts.items()}, {k: [v] for k, v in ref_acts.items()}
            )
            for tensor, match in matched.items():
                if not match.get("float") or not match.get("post_qdq"):
                    continue
                accumulate(signal, noise, tensor, match["float"][0], match["post_qdq"][0])
    tensors, blocks = rank(signal, noise)
    progress(1.0, "drift measured")
    return DriftReport(fp32.name, quantized.name, len(inputs), tensors, blocks)


def rank(signal: dict[str, float], noise: dict[str, float]) -> tuple[list[TensorDrift], list[BlockDrift]]:
    """Tensors and blocks, lowest SQNR first, from the accumulated sums."""
    tensors = sorted(
        (TensorDrift(t, block_of(t), sqnr_db(signal[t], noise[t])) for t in signal),
        key=lambda d: d.sqnr_db,
    )
    by_block: dict[str, list[TensorDrift]] = {}
    for d in tensors:
        if d.block:
            by_block.setdefault(d.block, []).append(d)
    blocks = sorted(
        (
            BlockDrift(b, _module([d.tensor for d in ds]), ds[0].sqnr_db, ds[0].tensor, len(ds))
            for b, ds in by_block.items()
        ),
        key=lambda b: b.worst_db,
    )
    return tensors, blocks
