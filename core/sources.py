"""One resolver for every way a user names a model: official name, legacy .pt, ultralytics .pt, .onnx."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .cache import sha256_file
from .config import OFFICIAL_MODELS, models_dir
from .errors import InputError, ModelError, UnsafeModelError
from .processing import OutputLayout
from .progress import Progress, no_progress

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


class SourceKind(StrEnum):
    LEGACY_PT = "yolov5-pt"  # ultralytics/yolov5 code base checkpoint: loaded safely, no code runs
    ULTRALYTICS_PT = "ultralytics-pt"  # ultralytics package checkpoint: unpickles, needs explicit trust
    ONNX = "onnx"  # a detector already in ONNX


@dataclass(frozen=True)
class ModelSource:
    path: Path
    kind: SourceKind
    sha256: str
    names_file: Path | None = None

    @property
    def name(self) -> str:
        return self.path.stem


def resolve_model(
    spec: str | Path,
    *,
    models_directory: str | Path | None = None,
    trust: bool = False,
    names_file: str | Path | None = None,
    progress: Progress = no_progress,
) -> ModelSource:
    """Turn ``--model`` (a path or an official name like ``yolov5n``) into a checked model source."""
    text = str(spec).strip()
    path = Path(text).expanduser()
    if not path.exists() and text.lower() in OFFICIAL_MODELS:
        path = _official(text.lower(), models_dir(models_directory), progress)
    if not path.is_file():
        raise InputError(
            f"model {text!r} not found: expected a .pt or .onnx file, or an official name "
            f"({', '.join(OFFICIAL_MODELS)})"
        )
    names = Path(names_file).expanduser() if names_file else None
    if names is not None and not names.is_file():
        raise InputError(f"names file {names} not found")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        kind = SourceKind.ONNX
    elif suffix in (".pt", ".pth"):
        kind = classify_checkpoint(path)
        if kind is SourceKind.ULTRALYTICS_PT and not trust:
            raise UnsafeModelError(
                f"{path.name} is an ultralytics checkpoint; loading it unpickles arbitrary code from the file. "
                "Pass --trust (app: tick 'I trust this file') only if you trust where it came from"
            )
    else:
        raise InputError(f"{path.name}: unsupported model file type {suffix!r}; accepted: .pt, .pth, .onnx")
    return ModelSource(path=path.resolve(), kind=kind, sha256=sha256_file(path), names_file=names)


def _official(name: str, directory: Path, progress: Progress) -> Path:
    local = directory / f"{name}.pt"
    if local.is_file():
        return local
    from .download import download_official

    return download_official(name, directory, progress)


def classify_checkpoint(path: Path) -> SourceKind:
    """Tell a legacy YOLOv5 pickle from an ultralytics one by the class names it references (no unpickling)."""
    from .legacy_yolov5 import ULTRALYTICS_PREFIX, checkpoint_globals

    names = checkpoint_globals(path)
    if any(g.startswith(ULTRALYTICS_PREFIX) for g in names):
        return SourceKind.ULTRALYTICS_PT
    if any(g.startswith("models.yolo.") for g in names):
        return SourceKind.LEGACY_PT
    shown = ", ".join(sorted(names)[:5]) or "no classes"
    raise ModelError(f"{path.name}: not a YOLOv5/ultralytics detection checkpoint (it references {shown})")


# ---------------------------------------------------------------------------------------------
# ONNX inspection: is this a single-image detector, and what do its outputs mean?


@dataclass(frozen=True)
class ModelInfo:
    input_name: str
    input_hw: tuple[int, int] | None  # None when the ONNX input is dynamic
    output_name: str
    layout: OutputLayout
    names: tuple[str, ...]
    precision_hint: str  # "fp32", "fp16" or "int8 (Q/DQ)": what the file itself carries

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


def _dims(value_info: object) -> list[int | None]:
    shape = value_info.type.tensor_type.shape  # type: ignore[attr-defined]
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]


def inspect_onnx(path: Path, names_file: Path | None = None) -> ModelInfo:
    """Check that ``path`` is a single-image-input YOLO detector and read its layout and class names."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path.name}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    graph = model.graph
    init_names = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ModelError(f"{path.name}: expected one image input, found {len(inputs)} inputs")
    inp = inputs[0]
    in_dims = _dims(inp)
    elem = inp.type.tensor_type.elem_type
    if len(in_dims) != 4 or in_dims[1] not in (3, None):
        raise ModelError(f"{path.name}: input {inp.name!r} has shape {in_dims}; expected [1, 3, H, W]")
    if elem != onnx.TensorProto.FLOAT:
        raise ModelError(
            f"{path.name}: input is {onnx.TensorProto.DataType.Name(elem)}; expected FLOAT "
            "(give the FP32 model; FP16 and INT8 variants are made from it)"
        )
    h, w = in_dims[2], in_dims[3]
    input_hw = (h, w) if h and w else None

    outputs = list(graph.output)
    out = outputs[0]
    out_dims = _dims(out)
    layout, nc = _guess_layout(out_dims, input_hw)
    if layout is None:
        raise ModelError(
            f"{path.name}: output {out.name!r} has shape {out_dims}; expected a detector output "
            "[1, N, 5+classes] (YOLOv5) or [1, 4+classes, N] (YOLOv5u/v8 and later)"
        )

    meta = {p.key: p.value for p in model.metadata_props}
    names = read_names_file(names_file) if names_file else parse_names(meta.get("names", "")) or None
    if names is None and nc == len(COCO_NAMES):
        names = list(COCO_NAMES)
    if names is None and nc is not None:
        names = [f"class{i}" for i in range(nc)]
    if nc is not None and names is not None and len(names) != nc:
        raise ModelError(f"{path.name}: the model predicts {nc} classes but {len(names)} class names were given")
    ops = {n.op_type for n in graph.node}
    inits_fp16 = any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)
    hint = "int8 (Q/DQ)" if "QuantizeLinear" in ops else "fp16" if inits_fp16 else "fp32"
    return ModelInfo(
        input_name=inp.name,
        input_hw=input_hw,
        output_name=out.name,
        layout=layout,
        names=tuple(names or ()),
        precision_hint=hint,
    )


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
