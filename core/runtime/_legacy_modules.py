"""The torch modules that stand in for the legacy YOLOv5 classes (imported only when a checkpoint is loaded).

Kept apart from :mod:`core.runtime.legacy_yolov5` so that resolving a ``.pt`` (reading its class names) and every
path that only needs a cached ONNX file never import torch: ~3 s of the app's cold start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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
