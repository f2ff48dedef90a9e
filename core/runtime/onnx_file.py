"""The one reader of ONNX files: what goes in and out, the precision the file carries, its class names.

Every user reads a file through :func:`read_onnx` (the TensorRT backend, for the engine it builds) or
:func:`inspect_onnx` (the store and the converter: is this a single-image YOLO detector, and what do
its outputs mean?). Files are read with ``load_external_data=False``: a model may be untrusted, and
its external-data references must never make us open files beyond it.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InputError, ModelError
from core.runtime.processing import OutputLayout
from core.variants import Int8Flavour, Precision

if TYPE_CHECKING:
    import onnx

COCO_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the file: its I/O, precision and metadata


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int | None, ...]  # as stored; None for a dynamic (named or unknown) dimension
    elem_type: int  # onnx.TensorProto.DataType

    @property
    def shape(self) -> tuple[int, ...]:
        """The dimensions with -1 for each dynamic (or non-positive) one, as TensorRT writes them."""
        return tuple(d if d is not None and d > 0 else -1 for d in self.dims)


@dataclass(frozen=True)
class OnnxFile:
    """What one ONNX file carries, read without running it."""

    name: str  # the file's name, for messages
    input: TensorInfo  # the one graph input that is not an initializer
    outputs: tuple[TensorInfo, ...]
    precision: Precision  # Q/DQ nodes: INT8; FP16 initializers or casts to FP16: FP16; else FP32
    int8_flavour: Int8Flavour | None  # INT8 only: CPU when a zero-point is uint8, else TRT (symmetric int8)
    metadata: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def input_name(self) -> str:
        return self.input.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        """-1 for a dynamic dimension."""
        return self.input.shape

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.input_shape)


def _tensor(value_info: object) -> TensorInfo:
    tensor_type = value_info.type.tensor_type  # type: ignore[attr-defined]
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
    return TensorInfo(value_info.name, dims, tensor_type.elem_type)  # type: ignore[attr-defined]


def read_onnx(path: Path) -> OnnxFile:
    """Read ``path``'s graph I/O, precision and metadata; :class:`ModelError` unless it is a readable
    ONNX model with exactly one input."""
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path.name}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ModelError(f"{path.name}: expected one image input, found {len(inputs)} inputs")
    if not graph.output:
        raise ModelError(f"{path.name}: the model has no outputs")

    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    zero_points = [inits[n.input[2]] for n in qdq if len(n.input) > 2 and n.input[2] in inits]
    fp16 = any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer) or any(
        n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT16 for a in n.attribute)
        for n in graph.node
    )
    flavour = None
    if qdq:
        unsigned = any(z.data_type == onnx.TensorProto.UINT8 for z in zero_points)
        flavour = Int8Flavour.CPU if unsigned else Int8Flavour.TRT
    return OnnxFile(
        name=path.name,
        input=_tensor(inputs[0]),
        outputs=tuple(_tensor(o) for o in graph.output),
        precision=Precision.INT8 if qdq else Precision.FP16 if fp16 else Precision.FP32,
        int8_flavour=flavour,
        metadata={p.key: p.value for p in model.metadata_props},
    )


# ---------------------------------------------------------------------------------------------
# the detector view: is this a single-image YOLO detector, and what do its outputs mean?


@dataclass(frozen=True)
class ModelInfo:
    input_name: str
    input_hw: tuple[int, int] | None  # None when the ONNX input is dynamic
    layout: OutputLayout
    names: tuple[str, ...]
    stride: int = 32  # the largest stride (metadata "stride", else YOLO's 32): rect input sides are multiples of it

    @property
    def num_classes(self) -> int:
        return len(self.names)


def parse_names(text: str) -> list[str] | None:
    """Class names from JSON (list or {id: name}) or a Python literal dict (ultralytics metadata)."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return [str(value[k]) for k in sorted(value, key=int)]
        if isinstance(value, list):
            return [str(v) for v in value]
    return None


def read_names_file(path: Path) -> list[str]:
    """A names file: JSON / YAML-ish ``names:`` list, or one name per line."""
    text = path.read_text(encoding="utf-8", errors="replace")
    parsed = parse_names(text.strip())
    if parsed is None:
        lines = [ln.strip() for ln in text.splitlines()]
        parsed = [ln for ln in lines if ln and not ln.startswith("#")]
    if not parsed:
        raise InputError(f"names file {path} holds no class names")
    return parsed


def inspect_onnx(path: Path, names_file: Path | None = None) -> ModelInfo:
    """Check that ``path`` is a single-image-input YOLO detector and read its layout and class names."""
    return model_info(read_onnx(path), names_file)


def model_info(model: OnnxFile, names_file: Path | None = None) -> ModelInfo:
    """The detector view of a file :func:`read_onnx` read (see :func:`inspect_onnx`)."""
    import onnx

    name, inp, out = model.name, model.input, model.outputs[0]
    in_dims = list(inp.dims)
    if len(in_dims) != 4 or in_dims[1] not in (3, None):
        raise ModelError(f"{name}: input {inp.name!r} has shape {in_dims}; expected [1, 3, H, W]")
    if inp.elem_type != onnx.TensorProto.FLOAT:
        raise ModelError(
            f"{name}: input is {onnx.TensorProto.DataType.Name(inp.elem_type)}; expected FLOAT "
            "(give the FP32 model; FP16 and INT8 variants are made from it)"
        )
    h, w = in_dims[2], in_dims[3]
    input_hw = (h, w) if h and w else None

    out_dims = list(out.dims)
    layout, nc = _guess_layout(out_dims, input_hw)
    if layout is None:
        raise ModelError(
            f"{name}: output {out.name!r} has shape {out_dims}; expected a detector output "
            "[1, N, 5+classes] (YOLOv5) or [1, 4+classes, N] (YOLOv5u/v8 and later)"
        )

    names = read_names_file(names_file) if names_file else parse_names(model.metadata.get("names", "")) or None
    if names is None and nc == len(COCO_NAMES):
        names = list(COCO_NAMES)
    if names is None and nc is not None:
        names = [f"class{i}" for i in range(nc)]
    if nc is not None and names is not None and len(names) != nc:
        raise ModelError(f"{name}: the model predicts {nc} classes but {len(names)} class names were given")
    stride = model.metadata.get("stride", "32")
    stride = max(int(float(stride)), 1) if stride.replace(".", "", 1).isdigit() else 32  # ultralytics: "32" or "32.0"
    return ModelInfo(input_name=inp.name, input_hw=input_hw, layout=layout, names=tuple(names or ()), stride=stride)


def _guess_layout(
    dims: Sequence[int | None], input_hw: tuple[int, int] | None
) -> tuple[OutputLayout | None, int | None]:
    if len(dims) != 3 or dims[0] not in (1, None):
        return None, None
    a, b = dims[1], dims[2]
    if a is not None and b is not None:
        if b >= 6 and a > b:
            return OutputLayout.YOLOV5, b - 5
        if a >= 5 and b > a:
            return OutputLayout.ANCHOR_FREE, a - 4
        return None, None
    if b is not None and b >= 6:  # [1, N?, 5+nc]
        return OutputLayout.YOLOV5, b - 5
    if a is not None and a >= 5:  # [1, 4+nc, N?]
        return OutputLayout.ANCHOR_FREE, a - 4
    return None, None


# Inputs that TensorRT reads as shapes (sizes, scales, starts...): they must not be computed in FP16.
SHAPE_INPUTS: dict[str, tuple[int, ...]] = {
    "Resize": (1, 2, 3),
    "Upsample": (1,),
    "Reshape": (1,),
    "Expand": (1,),
    "Tile": (1,),
    "Slice": (1, 2, 3, 4),
    "ConstantOfShape": (0,),
    "Range": (0, 1, 2),
    "Pad": (1,),
    "TopK": (1,),
}


def fp16_shape_inputs(model: onnx.ModelProto) -> list[str]:
    """Nodes whose shape input is computed from an FP16 tensor (``"<node> input <i>"``); [] when none is.

    Walks back from every shape input through the nodes that compute it, stopping at ``Shape`` (it
    reads only dimensions), and reports an FP16 tensor, initializer or ``Constant`` on the way.
    """
    import onnx

    fp16 = onnx.TensorProto.FLOAT16
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    dtype = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    dtype.update({t.name: t.data_type for t in graph.initializer})
    producer = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    dtype[node.output[0]] = attr.t.data_type
    offenders = []
    for node in graph.node:
        for i in SHAPE_INPUTS.get(node.op_type, ()):
            if i >= len(node.input) or not node.input[i]:
                continue
            stack, seen = [node.input[i]], set()
            while stack:
                name = stack.pop()
                if name in seen:
                    continue
                seen.add(name)
                if dtype.get(name) == fp16:
                    offenders.append(f"{node.name or node.op_type} input {i}")
                    break
                source = producer.get(name)
                if source is not None and source.op_type != "Shape":
                    stack.extend(x for x in source.input if x)
    return offenders
