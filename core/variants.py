"""What can be run: runtimes x precisions, in ONE table that drives dispatch, UI and validation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import InputError


class Runtime(StrEnum):
    ORT = "ort"  # ONNX Runtime, CPU execution provider
    ORT_CUDA = "ort-cuda"  # ONNX Runtime, CUDA execution provider
    ORT_TRT = "ort-trt"  # ONNX Runtime, TensorRT execution provider
    TRT = "trt"  # native TensorRT engine

    @property
    def label(self) -> str:
        return _RUNTIME_LABELS[self]


_RUNTIME_LABELS = {
    Runtime.ORT: "ONNX Runtime (CPU)",
    Runtime.ORT_CUDA: "ONNX Runtime (CUDA)",
    Runtime.ORT_TRT: "ONNX Runtime (TensorRT EP)",
    Runtime.TRT: "TensorRT",
}


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class Int8Flavour(StrEnum):
    """How an INT8 Q/DQ model is quantised; each runtime accepts one of them best."""

    CPU = "cpu"  # uint8 activations (asymmetric), int8 per-channel weights: fastest on x86 ORT
    TRT = "trt"  # symmetric int8 activations and weights, zero-points 0, float bias: TensorRT


class Artefact(StrEnum):
    """The file a variant runs from. ONNX files carry their precision (TensorRT 11 style)."""

    ONNX_FP32 = "onnx-fp32"
    ONNX_FP16 = "onnx-fp16"
    ONNX_INT8_CPU = "onnx-int8-cpu"
    ONNX_INT8_TRT = "onnx-int8-trt"

    @property
    def int8_flavour(self) -> Int8Flavour | None:
        return {
            Artefact.ONNX_INT8_CPU: Int8Flavour.CPU,
            Artefact.ONNX_INT8_TRT: Int8Flavour.TRT,
        }.get(self)


@dataclass(frozen=True)
class Variant:
    runtime: Runtime
    precision: Precision

    def __str__(self) -> str:
        return f"{self.runtime.value}:{self.precision.value}"

    @property
    def spec(self) -> VariantSpec:
        return VARIANTS[self]

    @classmethod
    def parse(cls, text: str) -> Variant:
        """Parse ``runtime:precision`` (e.g. ``ort:int8``); the error lists what exists."""
        raw = text.strip().lower()
        runtime_s, sep, precision_s = raw.partition(":")
        try:
            variant = cls(Runtime(runtime_s), Precision(precision_s)) if sep else None
        except ValueError:
            variant = None
        if variant is None or variant not in VARIANTS:
            known = ", ".join(str(v) for v in VARIANTS)
            raise InputError(f"unknown variant {text!r}: expected runtime:precision, one of {known}")
        return variant


def parse_variants(text: str | list[str]) -> list[Variant]:
    """Parse a comma-separated list (or list of strings), keeping order, dropping duplicates."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[Variant] = []
    for item in items:
        if item.strip():
            v = Variant.parse(item)
            if v not in out:
                out.append(v)
    if not out:
        raise InputError("no variant given: expected e.g. ort:fp32,ort:fp16,ort:int8")
    return out


@dataclass(frozen=True)
class VariantSpec:
    variant: Variant
    artefact: Artefact  # the ONNX file the variant runs from (engines are built from it)
    needs_gpu: bool
    note: str = ""  # shown beside the variant: what the precision really means on this runtime


def _spec(rt: Runtime, p: Precision, artefact: Artefact, note: str = "") -> VariantSpec:
    return VariantSpec(Variant(rt, p), artefact, needs_gpu=rt is not Runtime.ORT, note=note)


_SPECS = [
    _spec(Runtime.ORT, Precision.FP32, Artefact.ONNX_FP32),
    _spec(
        Runtime.ORT,
        Precision.FP16,
        Artefact.ONNX_FP16,
        "FP16 weights and activations; ONNX Runtime's x86 CPU provider has few FP16 kernels and "
        "inserts casts, so most arithmetic runs in FP32 (accuracy is FP16's, speed is not)",
    ),
    _spec(Runtime.ORT, Precision.INT8, Artefact.ONNX_INT8_CPU, "static Q/DQ, u8 activations, s8 weights"),
    _spec(Runtime.ORT_CUDA, Precision.FP32, Artefact.ONNX_FP32),
    _spec(Runtime.ORT_CUDA, Precision.FP16, Artefact.ONNX_FP16),
    _spec(Runtime.ORT_TRT, Precision.FP32, Artefact.ONNX_FP32),
    _spec(Runtime.ORT_TRT, Precision.FP16, Artefact.ONNX_FP16),
    _spec(Runtime.ORT_TRT, Precision.INT8, Artefact.ONNX_INT8_TRT, "explicit Q/DQ, symmetric s8"),
    _spec(Runtime.TRT, Precision.FP32, Artefact.ONNX_FP32, "strongly typed network"),
    _spec(Runtime.TRT, Precision.FP16, Artefact.ONNX_FP16, "strongly typed network"),
    _spec(Runtime.TRT, Precision.INT8, Artefact.ONNX_INT8_TRT, "strongly typed, explicit Q/DQ"),
]

VARIANTS: dict[Variant, VariantSpec] = {s.variant: s for s in _SPECS}

CPU_VARIANTS: list[Variant] = [v for v, s in VARIANTS.items() if not s.needs_gpu]
REFERENCE = Variant(Runtime.ORT, Precision.FP32)
