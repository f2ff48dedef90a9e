"""YOLOv5's blocks (``model.0`` … ``model.24``, the checkpoint's layer list) as the exported graphs name them:
which block a node or tensor belongs to, and what kind of block it is. The precision explorer, the drift report
and the per-block profile all speak of blocks in these words."""

from __future__ import annotations

import re
from collections.abc import Sequence

_BLOCK = re.compile(r"(?:^|/|_)(model\.\d+)(?:/|$)")


def block_in(name: str) -> str:
    """``/model.23/m/m.0/cv1/act/Mul`` or ``images_f32_abcd_/model.0/conv/Conv`` -> ``model.23`` / ``model.0``;
    "" for a node outside the blocks (or one named by the runtime only, e.g. an inserted reorder)."""
    m = _BLOCK.search(name)
    return m.group(1) if m else ""


def block_index(block: str) -> int:
    return int(block.rpartition(".")[2]) if block.startswith("model.") else 10_000


def module_of(names: Sequence[str]) -> str:
    """What a YOLOv5 block is, from the names of the nodes or tensors it holds (as the checkpoint's layer list
    says): Conv, C3, SPPF, Upsample, Concat or Detect."""
    joined = " ".join(names)
    if "/m.0/" in joined and "/cv3/" in joined:
        return "C3"
    if "MaxPool" in joined:
        return "SPPF"
    if "Resize" in joined:
        return "Upsample"
    if "/m.0/" in joined or "/m.2/" in joined:
        return "Detect"
    if "/conv/" in joined or "/act/" in joined:
        return "Conv"
    if "Concat" in joined:
        return "Concat"
    return "?"
