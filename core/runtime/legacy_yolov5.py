"""Load legacy YOLOv5 checkpoints (ultralytics/yolov5 code base) without executing code from them.

A ``.pt`` file is a pickle. ``torch.load(weights_only=True)`` only rebuilds tensors and the classes
we allow by name; the legacy names (``models.common.Conv``, ``models.yolo.Detect``...) are mapped to
attribute-compatible blocks from ``ultralytics.nn.modules`` and to the two small classes of
:mod:`core.runtime._legacy_modules`, so nothing from the file is ever imported or run. Anything else in the
pickle is refused.

torch is imported only by :func:`load_legacy`: :func:`checkpoint_globals` reads the pickle's class
names with the standard library, so telling checkpoint kinds apart costs no torch import.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ModelError, Setting, UnsafeModelError

if TYPE_CHECKING:
    from core.runtime._legacy_modules import LegacyCheckpoint, LegacyDetect, LegacyModel

# Legacy block names that ultralytics re-implements with the same attributes (cv1, cv2, m, ...).
_COMMON_BLOCKS = (
    "Conv",
    "DWConv",
    "Bottleneck",
    "BottleneckCSP",
    "C3",
    "C3x",
    "C3TR",
    "C3Ghost",
    "GhostConv",
    "GhostBottleneck",
    "SPP",
    "SPPF",
    "Focus",
    "Concat",
)

# torch.nn classes a legacy checkpoint may hold (names, so this module needs no torch).
_TORCH_MODULE_NAMES = (
    "Sequential",
    "ModuleList",
    "Conv2d",
    "BatchNorm2d",
    "SiLU",
    "ReLU",
    "LeakyReLU",
    "Hardswish",
    "Identity",
    "Upsample",
    "MaxPool2d",
)

# Namespaces that mark a checkpoint as written by the ultralytics package (YOLOv5u, v8, 11...).
ULTRALYTICS_PREFIX = "ultralytics."


def _torch_modules() -> list[Any]:
    from torch import nn

    return [getattr(nn, n) for n in _TORCH_MODULE_NAMES]


def _safe_globals() -> list[Any]:
    import ultralytics.nn.modules as um  # the blocks the legacy names map to

    from core.runtime._legacy_modules import LegacyDetect, LegacyModel

    pairs: list[Any] = [(getattr(um, n), f"models.common.{n}") for n in _COMMON_BLOCKS]
    pairs += [(LegacyModel, "models.yolo.Model"), (LegacyModel, "models.yolo.DetectionModel")]
    pairs += [(LegacyDetect, "models.yolo.Detect")]
    pairs += _torch_modules()
    pairs += [set]
    return pairs


def checkpoint_globals(path: Path) -> list[str]:
    """Names of the classes/functions the pickle would import (torch's own and ``collections`` left out),
    read from its opcodes without unpickling and without importing torch."""
    try:
        with zipfile.ZipFile(path) as zf:  # torch.save's format: a zip holding <name>/data.pkl
            member = next(n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl"))
            data = zf.read(member)
        found = _pickle_globals(data)
    except StopIteration:
        raise ModelError(f"{path.name}: not a readable PyTorch checkpoint (no data.pkl in the archive)") from None
    except Exception as exc:  # not a zip, or not a pickle inside
        raise ModelError(f"{path.name}: not a readable PyTorch checkpoint ({exc})") from exc
    return sorted(g for g in found if not g.startswith(("torch.", "collections.")))


def _pickle_globals(data: bytes) -> set[str]:
    """Every ``module.name`` a pickle's GLOBAL / STACK_GLOBAL opcodes reference (a static read)."""
    found: set[str] = set()
    memo: dict[int, str | None] = {}
    pushed: list[str | None] = []  # what the last opcodes pushed: strings, or None for anything else
    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            found.add(f"{module}.{attr}")
            pushed.append(None)
        elif name == "STACK_GLOBAL":
            if len(pushed) >= 2 and pushed[-2] is not None and pushed[-1] is not None:
                found.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        elif "UNICODE" in name or "STRING" in name:
            pushed.append(str(arg))
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name.endswith("PUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif name.endswith("GET"):
            pushed.append(memo.get(int(arg)))
        else:
            pushed.append(None)
    return found


def load_legacy(path: Path) -> LegacyCheckpoint:
    """Load a legacy YOLOv5 detection checkpoint with ``weights_only=True`` and allow-listed classes."""
    import torch
    from torch import nn

    from core.runtime._legacy_modules import LegacyCheckpoint, LegacyDetect, LegacyModel

    allowed = _safe_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        try:  # torch's static read: leaves out everything torch itself allows
            needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except Exception:
            needed = set(checkpoint_globals(path))
        known = {f"models.common.{n}" for n in _COMMON_BLOCKS} | {
            "models.yolo.Model",
            "models.yolo.DetectionModel",
            "models.yolo.Detect",
        }
        known |= {f"{c.__module__}.{c.__qualname__}" for c in _torch_modules()}
        refused = sorted(g for g in needed if g not in known and not g.startswith(("torch.", "collections.")))
        if refused:
            raise UnsafeModelError(
                f"{path.name}: refused to load; its pickle needs classes outside the YOLOv5 allow-list "
                f"({', '.join(refused[:6])}). Only legacy YOLOv5 detection checkpoints load without being trusted.",
                setting=Setting.TRUST,
            ) from exc
        raise ModelError(f"{path.name}: cannot load as a YOLOv5 checkpoint: {exc}") from exc

    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else ckpt
    if not isinstance(model, LegacyModel):
        raise ModelError(f"{path.name}: the checkpoint holds no YOLOv5 model (found {type(model).__name__})")
    detect = model.model[-1]
    if not isinstance(detect, LegacyDetect):
        raise ModelError(
            f"{path.name}: last layer is {type(detect).__name__}, not a YOLOv5 Detect head "
            "(segmentation and classification checkpoints are not supported)"
        )
    model = model.float().eval()
    for m in model.modules():
        if isinstance(m, nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
            m.recompute_scale_factor = None  # pickles from torch < 1.11 lack this attribute
    names = model.names if hasattr(model, "names") else None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not names or len(names) != detect.nc:
        names = [f"class{i}" for i in range(detect.nc)]
    stride = _dry_run(model, detect, path.name)
    return LegacyCheckpoint(model=model, names=[str(n) for n in names], stride=stride)


def _dry_run(model: LegacyModel, detect: LegacyDetect, name: str) -> int:
    """Run the model once on a tiny input: a checkpoint whose layers do not fit together (edited or
    damaged weights) is refused here with one message, not deep inside the ONNX export."""
    import torch

    try:
        stride = int(detect.stride.max())
        side = 2 * stride
        with torch.no_grad():
            out = model(torch.zeros(1, 3, side, side))
        cells = sum(detect.na * (side // int(s)) ** 2 for s in detect.stride)
        if tuple(out.shape) != (1, cells, detect.nc + 5):
            raise ValueError(f"output shape {tuple(out.shape)}, expected {(1, cells, detect.nc + 5)}")
    except Exception as exc:
        raise ModelError(f"{name}: the checkpoint's layers do not fit together, it cannot run ({exc})") from exc
    return stride
