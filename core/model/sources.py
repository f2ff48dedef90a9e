"""One resolver for every way a user names a model: official name, legacy .pt, ultralytics .pt, .onnx.

An official name is looked up in the models directory first (``--models-dir``, ``$YOLOLAB_MODELS_DIR``,
``<cache>/weights``), then among the checkpoints the app ships (``assets/models/``: YOLOv5n, so a fresh machine
works offline; checked against its sha256 each time, a changed file is refused), then downloaded.
Reading an ONNX file (its inputs, outputs, precision and class names) is :mod:`core.runtime.onnx_file`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.cache import sha256_file
from core.config import OFFICIAL_MODELS, models_dir, weights_url
from core.errors import InputError, ModelError, Setting, UnsafeModelError
from core.progress import Progress, no_progress

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"  # what the app ships (assets/README.md)


@dataclass(frozen=True)
class Bundled:
    """An official checkpoint shipped in :data:`BUNDLED_DIR`, with the hash it must have."""

    file: str
    sha256: str
    licence: str
    release: str


BUNDLED_MODELS: dict[str, Bundled] = {
    "yolov5n": Bundled(
        file="yolov5n.pt",
        sha256="4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3",
        licence="AGPL-3.0",
        release="YOLOv5n v6.1, ultralytics/yolov5 commit 981548a1b",
    ),
}


class SourceOrigin(StrEnum):
    """Where a resolved model file came from (what the Models page tells the user)."""

    BUNDLED = "bundled"  # shipped with the app in assets/models/, sha256-checked
    MODELS_DIR = "models-dir"  # an official name found in the models directory
    DOWNLOADED = "downloaded"  # an official name fetched just now into the models directory
    FILE = "file"  # a path the user gave


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
    origin: SourceOrigin = SourceOrigin.FILE
    provenance: str = ""  # one line for people, e.g. "bundled with the app (assets/models/yolov5n.pt, AGPL-3.0)"

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
    origin, provenance, checked = SourceOrigin.FILE, "", None
    if not path.exists() and text.lower() in OFFICIAL_MODELS:
        path, origin, provenance, checked = _official(text.lower(), models_dir(models_directory), progress)
    elif (bundled := _bundled_at(path)) is not None:  # the shipped file named by its path: checked all the same
        path, origin, provenance, checked = bundled
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
    if not provenance:
        provenance = f"your file ({path})"
    return ModelSource(
        path=path.resolve(),
        kind=kind,
        sha256=checked or sha256_file(path),
        names_file=names,
        origin=origin,
        provenance=provenance,
    )


_Found = tuple[Path, SourceOrigin, str, str | None]  # path, origin, provenance, sha256 when already checked


def _official(name: str, directory: Path, progress: Progress) -> _Found:
    local = directory / f"{name}.pt"
    if local.is_file():
        return local, SourceOrigin.MODELS_DIR, f"official checkpoint from the models directory ({local})", None
    if (shipped := BUNDLED_MODELS.get(name)) is not None and (BUNDLED_DIR / shipped.file).is_file():
        return _checked_bundle(shipped)
    from core.model.download import download_official

    path = download_official(name, directory, progress)
    return path, SourceOrigin.DOWNLOADED, f"official checkpoint downloaded from {weights_url()} into {directory}", None


def _bundled_at(path: Path) -> _Found | None:
    """The shipped checkpoint when ``path`` is one (by location), else None."""
    if not path.is_file():
        return None
    for shipped in BUNDLED_MODELS.values():
        target = BUNDLED_DIR / shipped.file
        if target.is_file() and path.resolve() == target.resolve():
            return _checked_bundle(shipped)
    return None


def _checked_bundle(shipped: Bundled) -> _Found:
    """The shipped file, after checking it is byte for byte the one the app was released with."""
    path = BUNDLED_DIR / shipped.file
    digest = sha256_file(path)
    if digest != shipped.sha256:
        raise ModelError(
            f"the bundled model {path} has been changed (sha256 {digest[:16]}…, expected {shipped.sha256[:16]}…) "
            f"and is not loaded. Restore it (git checkout -- assets/models/{shipped.file}, or reinstall), or put an "
            "official checkpoint in the models directory (--models-dir or $YOLOLAB_MODELS_DIR)"
        )
    shown = f"{BUNDLED_DIR.parent.name}/{BUNDLED_DIR.name}/{shipped.file}"
    return path, SourceOrigin.BUNDLED, f"bundled with the app ({shown}, {shipped.licence})", digest


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
