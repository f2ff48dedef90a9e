"""Load legacy YOLOv5 checkpoints (ultralytics/yolov5 code base) without executing code from them.

A ``.pt`` file is a pickle. ``torch.load(weights_only=True)`` only rebuilds tensors and the classes
we allow by name; the legacy names (``models.common.Conv``, ``models.yolo.Detect``...) are mapped to
attribute-compatible blocks from ``ultralytics.nn.modules`` and to the two small classes below, so
nothing from the file is ever imported or run. Anything else in the pickle is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelError, UnsafeModelError

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

_TORCH_MODULES = (
    nn.Sequential,
    nn.ModuleList,
    nn.Conv2d,
    nn.BatchNorm2d,
    nn.SiLU,
    nn.ReLU,
    nn.LeakyReLU,
    nn.Hardswish,
    nn.Identity,
    nn.Upsample,
    nn.MaxPool2d,
)

# Namespaces that mark a checkpoint as written by the ultralytics package (YOLOv5u, v8, 11...).
ULTRALYTICS_PREFIX = "ultralytics."


class LegacyModel(nn.Module):
    """Stands in for ``models.yolo.Model`` / ``DetectionModel``: routes each layer's inputs by ``f``."""

    model: nn.Sequential
    save: list[int]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor | None] = []
        for m in self.model:
            if m.f != -1:
                x = outputs[m.f] if isinstance(m.f, int) else [x if j == -1 else outputs[j] for j in m.f]
            x = m(x)
            outputs.append(x if m.i in self.save else None)
        return x


class LegacyDetect(nn.Module):
    """Stands in for ``models.yolo.Detect``: 1x1 convs, then the anchor-grid decode to pixels.

    Output ``[batch, anchors*cells, 5 + nc]`` with xywh in input pixels, objectness and class scores
    after sigmoid: exactly what YOLOv5's own ONNX export produces.
    """

    nc: int
    nl: int
    na: int
    no: int
    anchors: torch.Tensor  # (nl, na, 2) in grid units
    stride: torch.Tensor
    m: nn.ModuleList

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        z = []
        for i in range(self.nl):
            p = self.m[i](xs[i])
            bs, _, ny, nx = p.shape
            p = p.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            grid, anchor_grid = self._make_grid(nx, ny, i, p.dtype)
            y = p.sigmoid()
            xy, wh, conf = y.split((2, 2, self.no - 4), 4)
            xy = (xy * 2 - 0.5 + grid) * self.stride[i]
            wh = (wh * 2) ** 2 * anchor_grid
            z.append(torch.cat((xy, wh, conf), 4).view(bs, -1, self.no))
        return torch.cat(z, 1)

    def _make_grid(self, nx: int, ny: int, i: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(1, self.na, ny, nx, 2).to(dtype)
        anchor_grid = (self.anchors[i] * self.stride[i]).view(1, self.na, 1, 1, 2).expand(1, self.na, ny, nx, 2)
        return grid, anchor_grid.to(dtype)


@dataclass(frozen=True)
class LegacyCheckpoint:
    model: LegacyModel
    names: list[str]
    stride: int  # the largest stride: input sides must be multiples of it


def _safe_globals() -> list[Any]:
    import ultralytics.nn.modules as um  # the blocks the legacy names map to

    pairs: list[Any] = [(getattr(um, n), f"models.common.{n}") for n in _COMMON_BLOCKS]
    pairs += [(LegacyModel, "models.yolo.Model"), (LegacyModel, "models.yolo.DetectionModel")]
    pairs += [(LegacyDetect, "models.yolo.Detect")]
    pairs += list(_TORCH_MODULES)
    pairs += [set]
    return pairs


def checkpoint_globals(path: Path) -> list[str]:
    """Names of the classes/functions the pickle would import; read without unpickling."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as exc:  # not a zip/pickle torch file at all
        raise ModelError(f"{path.name}: not a readable PyTorch checkpoint ({exc})") from exc


def load_legacy(path: Path) -> LegacyCheckpoint:
    """Load a legacy YOLOv5 detection checkpoint with ``weights_only=True`` and allow-listed classes."""
    allowed = _safe_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        needed = set(checkpoint_globals(path))
        known = {f"models.common.{n}" for n in _COMMON_BLOCKS} | {
            "models.yolo.Model",
            "models.yolo.DetectionModel",
            "models.yolo.Detect",
        }
        known |= {f"{c.__module__}.{c.__qualname__}" for c in _TORCH_MODULES}
        refused = sorted(g for g in needed if g not in known and not g.startswith(("torch.", "collections.")))
        if refused:
            raise UnsafeModelError(
                f"{path.name}: refused to load; its pickle needs classes outside the YOLOv5 allow-list "
                f"({', '.join(refused[:6])}). Only legacy YOLOv5 detection checkpoints load without --trust."
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
    return LegacyCheckpoint(model=model, names=[str(n) for n in names], stride=int(detect.stride.max()))
