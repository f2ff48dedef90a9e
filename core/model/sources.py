"""One resolver for every way a user names a model: official name, legacy .pt, ultralytics .pt, .onnx.

Reading an ONNX file (its inputs, outputs, precision and class names) is :mod:`core.runtime.onnx_file`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.cache import sha256_file
from core.config import OFFICIAL_MODELS, models_dir
from core.errors import InputError, ModelError, Setting, UnsafeModelError
from core.progress import Progress, no_progress


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
                "Trust it only if you trust where it came from",
                setting=Setting.TRUST,
            )
    else:
        raise InputError(f"{path.name}: unsupported model file type {suffix!r}; accepted: .pt, .pth, .onnx")
    return ModelSource(path=path.resolve(), kind=kind, sha256=sha256_file(path), names_file=names)


def _official(name: str, directory: Path, progress: Progress) -> Path:
    local = directory / f"{name}.pt"
    if local.is_file():
        return local
    from core.model.download import download_official

    return download_official(name, directory, progress)


def classify_checkpoint(path: Path) -> SourceKind:
    """Tell a legacy YOLOv5 pickle from an ultralytics one by the class names it references (no unpickling)."""
    from core.runtime import ULTRALYTICS_PREFIX, checkpoint_globals

    names = checkpoint_globals(path)
    if any(g.startswith(ULTRALYTICS_PREFIX) for g in names):
        return SourceKind.ULTRALYTICS_PT
    if any(g.startswith("models.yolo.") for g in names):
        return SourceKind.LEGACY_PT
    shown = ", ".join(sorted(names)[:5]) or "no classes"
    raise ModelError(f"{path.name}: not a YOLOv5/ultralytics detection checkpoint (it references {shown})")
