"""What can be run: runtimes x precisions, in ONE table that drives dispatch, UI and validation."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from core.errors import InputError


class Runtime(StrEnum):
    ORT = "ort"  # ONNX Runtime, CPU execution provider
    OV = "ov"  # OpenVINO, CPU plugin
    ORT_CUDA = "ort-cuda"  # ONNX Runtime, CUDA execution provider
    ORT_TRT = "ort-trt"  # ONNX Runtime, TensorRT execution provider
    TRT = "trt"  # native TensorRT engine
    TORCH = "torch"  # the PyTorch checkpoint itself, eager, on the CPU: the baseline
    TORCH_CUDA = "torch-cuda"  # the same on a CUDA GPU

    @property
    def label(self) -> str:
        return _RUNTIME_LABELS[self]


_RUNTIME_LABELS = {
    Runtime.ORT: "ONNX Runtime (CPU)",
    Runtime.OV: "OpenVINO (CPU)",
    Runtime.ORT_CUDA: "ONNX Runtime (CUDA)",
    Runtime.ORT_TRT: "ONNX Runtime (TensorRT EP)",
    Runtime.TRT: "TensorRT",
    Runtime.TORCH: "PyTorch (CPU)",
    Runtime.TORCH_CUDA: "PyTorch (CUDA)",
}


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"  # computed in bfloat16 by the runtime from the FP32 file (no BF16 file): only where it is native
    INT8 = "int8"


class Shape(StrEnum):
    """How an image is fitted into the network input: a run-wide choice beside runtime and precision."""

    SQUARE = "square"  # every image letterboxed to size x size (the exported file's own input)
    RECT = "rect"  # long side = size, the other padded only to the next multiple of the stride (detect.py)

    def words(self, size: int) -> str:
        """How results name it: "square 640", "rect 640"."""
        return f"{self.value} {size}"

    @property
    def help(self) -> str:
        return _SHAPE_HELP[self]


_SHAPE_HELP = {
    Shape.SQUARE: "every image letterboxed to a square (640x640): one input shape, the exported file's own",
    Shape.RECT: (
        "long side 640, the other side padded only to the next multiple of 32, as YOLOv5's detect.py runs a .pt: "
        "a 16:9 frame runs 640x384 instead of 640x640 (about 40 % less compute)"
    ),
}


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
    CHECKPOINT = "pt-fp32"  # the .pt itself (FP32 weights): the PyTorch baseline runs it

    @property
    def int8_flavour(self) -> Int8Flavour | None:
        return {
            Artefact.ONNX_INT8_CPU: Int8Flavour.CPU,
            Artefact.ONNX_INT8_TRT: Int8Flavour.TRT,
        }.get(self)

    @property
    def precision(self) -> Precision:
        """The precision the file carries (a BF16 variant runs from the FP32 file)."""
        return Precision(self.value.split("-")[1])

    @classmethod
    def of(cls, precision: Precision, flavour: Int8Flavour = Int8Flavour.CPU) -> Artefact:
        """The file that carries ``precision`` (INT8: in ``flavour``)."""
        return next(a for a in cls if a.precision is precision and a.int8_flavour in (None, flavour))


RECIPE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
RECIPE_NAME_RULE = "1-40 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"


NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NODE_NAME_RULE = "a node's name (its custom resource), IP address or node id, e.g. gpu-box/trt:fp16"


def check_recipe_name(name: str) -> str:
    if not RECIPE_NAME.match(name):
        raise InputError(f"recipe name {name!r} is not valid: {RECIPE_NAME_RULE}")
    return name


@dataclass(frozen=True)
class Variant:
    """A row of the variant table, and for INT8 optionally a saved recipe (``ort:int8@NAME``): the same
    runtime and precision, its INT8 file built with that recipe's settings instead of the default's."""

    runtime: Runtime
    precision: Precision
    recipe: str = ""
    node: str = ""  # a cluster node it runs on (``NODE/ort:fp32``, core.cluster); "" = in this process

    def __str__(self) -> str:
        base = f"{self.runtime.value}:{self.precision.value}"
        base = f"{base}@{self.recipe}" if self.recipe else base
        return f"{self.node}/{base}" if self.node else base

    @property
    def base(self) -> Variant:
        """The table row this variant runs as (recipe and node dropped)."""
        return replace(self, recipe="", node="") if self.recipe or self.node else self

    @property
    def here(self) -> Variant:
        """The same variant in this process (the node dropped)."""
        return replace(self, node="") if self.node else self

    def on(self, node: str) -> Variant:
        if not NODE_NAME.match(node):
            raise InputError(f"node name {node!r} is not valid: {NODE_NAME_RULE}")
        return replace(self, node=node)

    @property
    def spec(self) -> VariantSpec:
        return VARIANTS[self.base]

    def with_recipe(self, name: str) -> Variant:
        if self.spec.artefact.int8_flavour is None:
            raise InputError(f"{self}: a recipe applies to INT8 variants only (e.g. ort:int8@{name})")
        return replace(self, recipe=check_recipe_name(name))

    @classmethod
    def parse(cls, text: str) -> Variant:
        """Parse ``runtime:precision`` (e.g. ``ort:int8``), ``runtime:int8@RECIPE``, either with a cluster node in
        front (``gpu-box/trt:fp16``); the error lists what exists."""
        raw = text.strip().lower()
        node, slash, raw = raw.rpartition("/")
        head, at, recipe = raw.partition("@")
        runtime_s, sep, precision_s = head.partition(":")
        try:
            variant = cls(Runtime(runtime_s), Precision(precision_s)) if sep else None
        except ValueError:
            variant = None
        if variant is not None and variant in ABSENT:
            raise InputError(f"{variant} is not offered: {ABSENT[variant]}")
        if variant is None or variant not in VARIANTS:
            known = ", ".join(str(v) for v in VARIANTS)
            raise InputError(
                f"unknown variant {text!r}: expected runtime:precision (INT8 also runtime:int8@RECIPE), one of {known}"
            )
        variant = variant.with_recipe(recipe) if at else variant
        return variant.on(node) if slash else variant


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
    """One row of the table: everything the engine, the CLI and the pages need to know about a variant."""

    variant: Variant
    artefact: Artefact  # the ONNX file the variant runs from (engines are built from it)
    needs_gpu: bool
    backend: str  # "module:Class" of the Backend that runs it, imported only when used
    note: str = ""  # shown beside the variant: what the precision really means on this runtime

    @property
    def runtime(self) -> Runtime:
        return self.variant.runtime

    @property
    def precision(self) -> Precision:
        return self.variant.precision


_ORT_CPU = "core.runtime.backends.onnxruntime:OrtCpuBackend"
_OV = "core.runtime.backends.openvino:OpenvinoBackend"
_ORT_CUDA = "core.runtime.backends.onnxruntime:OrtCudaBackend"
_ORT_TRT = "core.runtime.backends.onnxruntime:OrtTensorrtBackend"
_TRT = "core.runtime.backends.tensorrt:TensorrtBackend"
_TORCH = "core.runtime.backends.torch:TorchCpuBackend"
_TORCH_CUDA = "core.runtime.backends.torch:TorchCudaBackend"
_BASELINE = "the checkpoint itself, PyTorch eager (inference_mode): the baseline"
_CPU_FP16 = (
    "FP16 weights and activations; ONNX Runtime's x86 CPU provider has few FP16 kernels and "
    "inserts casts, so most arithmetic runs in FP32 (accuracy is FP16's, speed is not)"
)
_OV_BF16 = "FP32 file, OpenVINO computes in bfloat16 (inference precision hint); needs native BF16 (AVX512_BF16 or AMX)"
_TORCH_BF16 = "CPU autocast to bfloat16 (convolutions and matmuls); needs native BF16 (AVX512_BF16 or AMX)"
_R, _P, _A = Runtime, Precision, Artefact

# THE table. Adding a runtime: its Runtime member and label above, one group of rows here, one backend
# module under core/runtime/backends/, and its requirements lines (README, "Layout"). A cell left empty on
# purpose is in ABSENT below, with the reason a user who asks for it reads.
_SPECS = [
    VariantSpec(Variant(runtime, precision), artefact, needs_gpu, backend, note)
    for runtime, precision, artefact, needs_gpu, backend, note in (
        # runtime    precision  artefact           GPU    backend    note
        (_R.ORT,      _P.FP32, _A.ONNX_FP32,     False, _ORT_CPU,  ""),
        (_R.ORT,      _P.FP16, _A.ONNX_FP16,     False, _ORT_CPU,  _CPU_FP16),
        (_R.ORT,      _P.INT8, _A.ONNX_INT8_CPU, False, _ORT_CPU,  "static Q/DQ, u8 activations, s8 weights"),
        (_R.OV,       _P.FP32, _A.ONNX_FP32,     False, _OV,       "inference precision hint f32"),
        (_R.OV,       _P.BF16, _A.ONNX_FP32,     False, _OV,       _OV_BF16),
        (_R.OV,       _P.INT8, _A.ONNX_INT8_CPU, False, _OV,       "the same Q/DQ file as ort:int8, run by OpenVINO"),
        (_R.ORT_CUDA, _P.FP32, _A.ONNX_FP32,     True,  _ORT_CUDA, ""),
        (_R.ORT_CUDA, _P.FP16, _A.ONNX_FP16,     True,  _ORT_CUDA, ""),
        (_R.ORT_TRT,  _P.FP32, _A.ONNX_FP32,     True,  _ORT_TRT,  ""),
        (_R.ORT_TRT,  _P.FP16, _A.ONNX_FP16,     True,  _ORT_TRT,  ""),
        (_R.ORT_TRT,  _P.INT8, _A.ONNX_INT8_TRT, True,  _ORT_TRT,  "explicit Q/DQ, symmetric s8"),
        (_R.TRT,      _P.FP32, _A.ONNX_FP32,     True,  _TRT,      "strongly typed network"),
        (_R.TRT,      _P.FP16, _A.ONNX_FP16,     True,  _TRT,      "strongly typed network"),
        (_R.TRT,      _P.INT8, _A.ONNX_INT8_TRT, True,  _TRT,      "strongly typed, explicit Q/DQ"),
        (_R.TORCH,    _P.FP32, _A.CHECKPOINT,    False, _TORCH,    _BASELINE),
        (_R.TORCH,    _P.BF16, _A.CHECKPOINT,    False, _TORCH,    _TORCH_BF16),
        (_R.TORCH_CUDA, _P.FP32, _A.CHECKPOINT,  True,  _TORCH_CUDA, _BASELINE),
        (_R.TORCH_CUDA, _P.FP16, _A.CHECKPOINT,  True,  _TORCH_CUDA, _BASELINE + ", weights and activations in FP16"),
        (_R.TORCH_CUDA, _P.BF16, _A.CHECKPOINT,  True,  _TORCH_CUDA, _BASELINE + ", weights and activations in BF16"),
    )
]  # fmt: skip

VARIANTS: dict[Variant, VariantSpec] = {s.variant: s for s in _SPECS}

# Cells of the table left empty on purpose: asking for one gets this reason, not a bare "unknown variant".
ABSENT: dict[Variant, str] = {
    Variant(Runtime.OV, Precision.FP16): (
        "OpenVINO's x86 CPU plugin computes f16 only on CPUs with AMX-FP16 (Xeon 6 and later); elsewhere an f16 "
        "hint runs in FP32 or BF16, so ov:fp16 would be a label, not a precision: use ov:bf16 or ov:fp32"
    ),
    Variant(Runtime.TRT, Precision.BF16): (
        "TensorRT builds BF16 only from a BF16-typed ONNX file (strongly typed networks); this tool makes FP32, "
        "FP16 and INT8 files, and no GPU here could check a BF16 one: use trt:fp16"
    ),
    Variant(Runtime.ORT, Precision.BF16): (
        "ONNX Runtime's CPU provider has almost no BF16 kernels (it would insert casts and compute in FP32): "
        "use ov:bf16"
    ),
}

CPU_VARIANTS: list[Variant] = [v for v, s in VARIANTS.items() if not s.needs_gpu]
REFERENCE = Variant(Runtime.ORT, Precision.FP32)


def runtime_spec(runtime: Runtime) -> VariantSpec:
    """The first row of ``runtime``: what every variant of it shares (backend, needs GPU)."""
    return next(s for s in _SPECS if s.runtime is runtime)


def with_reference(variants: list[Variant], reference: Variant = REFERENCE) -> list[Variant]:
    """``variants`` plus the reference (last) when it is not among them: what a comparison must run."""
    return [*variants, *([reference] if reference not in variants else [])]
