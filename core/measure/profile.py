"""Where the time goes: every variant's per-block profile side by side, from each runtime's own profiler.

For each variant, one image: each node's median time over ``runs`` calls (:meth:`Backend.profile_nodes`: ONNX
Runtime's session profiler, OpenVINO's performance counters, forward hooks around PyTorch's blocks), grouped by
YOLOv5 block (``model.N``; a node the runtime named itself, such as an inserted reorder, joins the block it
follows) and split into compute, quantize / dequantize (with requantizing concats) and layout reorders and casts.
Outside the blocks, the same run times letterbox, the graph alone (no profiler), the box decode and NMS, with
the variants in turn. The blocks' sum is set beside the graph's own median: a profile that does not add up to
what the graph takes (within :data:`AGREE`) says so.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from core.measure.footprint import Footprint
from core.progress import Progress, no_progress
from core.results import Result
from core.runtime import (
    Detector,
    NodeTime,
    PostParams,
    RawOutput,
    block_in,
    block_index,
    module_of,
    preprocess,
)
from core.tables import Column, Table
from core.variants import Runtime

AGREE = 0.15  # the blocks' sum and the graph's median agree within this share
KINDS = ("compute", "quantize", "reorder")
KIND_WORDS = {"compute": "compute", "quantize": "quantize / dequantize", "reorder": "reorders and casts"}


@dataclass(frozen=True)
class BlockTime:
    block: str  # model.N, or "other" for nodes no block name reaches
    module: str  # Conv, C3, SPPF, Upsample, Concat, Detect
    ms: float
    split: dict[str, float]  # kind -> ms (compute, quantize, reorder)
    kernels: dict[str, int]  # op or kernel as the runtime ran it -> nodes
    precisions: dict[str, int]  # precision computed in -> compute nodes
    convolutions: dict[str, int] = field(default_factory=dict)  # precision -> convolution nodes

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block, "module": self.module, "ms": round(self.ms, 3),
                "split_ms": {k: round(v, 3) for k, v in self.split.items()},
                "kernels": self.kernels, "precisions": self.precisions,
                "convolutions": self.convolutions}  # fmt: skip


@dataclass(frozen=True)
class VariantProfile:
    variant: str
    runs_on: str
    blocks: list[BlockTime]
    letterbox_ms: float  # medians of the same run, the variants in turn
    graph_ms: float  # the graph alone, no profiler
    decode_ms: float  # box decode in numpy (0 where the graph decodes itself)
    nms_ms: float

    @property
    def blocks_ms(self) -> float:
        return sum(b.ms for b in self.blocks)

    @property
    def agreement(self) -> float:
        """The blocks' sum over the graph's median."""
        return self.blocks_ms / self.graph_ms if self.graph_ms else float("nan")

    @property
    def adds_up(self) -> bool:
        return abs(self.agreement - 1) <= AGREE

    def split(self) -> dict[str, float]:
        return {k: sum(b.split.get(k, 0.0) for b in self.blocks) for k in KINDS}

    def coverage_words(self) -> str:
        """'ort:int8: 56 of 60 convolutions int8; model.0, model.24 in fp32', flagged below 90 % ("" when the
        profiler names no convolution precisions, e.g. PyTorch's blocks)."""
        asked = self.variant.rpartition("/")[2].partition("@")[0].partition(":")[2]
        total = sum(n for b in self.blocks for n in b.convolutions.values())
        if not total:
            return ""
        done = sum(b.convolutions.get(asked, 0) for b in self.blocks)
        others = [b.block for b in self.blocks if any(p != asked for p in b.convolutions)]
        words = f"{self.variant}: {done} of {total} convolutions ran in {asked}"
        if others:
            shown = ", ".join(others[:6]) + (" …" if len(others) > 6 else "")
            words += f"; not in {asked}: {shown}"
        if done / total < 0.9:
            words += f" (only {done / total:.0%}: below 90 %)"
        return words

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "runs_on": self.runs_on,
            "blocks": [b.to_dict() for b in self.blocks],
            "split_ms": {k: round(v, 3) for k, v in self.split().items()},
            "blocks_ms": round(self.blocks_ms, 3),
            "graph_ms": round(self.graph_ms, 3),
            "blocks_over_graph": round(self.agreement, 3),
            "adds_up": self.adds_up,
            "outside_ms": {
                "letterbox": round(self.letterbox_ms, 3),
                "box_decode": round(self.decode_ms, 3),
                "nms": round(self.nms_ms, 3),
            },
        }


@dataclass
class ProfileRun(Result):
    """``python -m core profile``: every variant's blocks side by side."""

    kind: ClassVar[str] = "profile"
    model: str
    imgsz: int
    image: str
    runs: int
    reference: str
    variants: list[VariantProfile] = field(default_factory=list)
    footprints: list[Footprint] = field(default_factory=list)  # memory, a fresh process per variant (may be empty)
    shape: str = "square"  # the input shape policy it ran (core.variants.Shape)

    def payload(self) -> dict[str, Any]:
        return {"model": self.model, "imgsz": self.imgsz, "shape": self.shape, "image": self.image, "runs": self.runs,
                "reference": self.reference, "variants": [v.to_dict() for v in self.variants],
                "footprint": [f.to_dict() for f in self.footprints], "words": self.words()}  # fmt: skip

    def block_names(self) -> list[str]:
        names = {b.block for v in self.variants for b in v.blocks}
        return sorted(names, key=block_index)

    def table(self) -> Table:
        columns = (Column("block"), Column("module"), *(Column(f"{v.variant} ms", 2) for v in self.variants))
        modules = {b.block: b.module for v in self.variants for b in v.blocks if b.module != "?"}
        rows: list[tuple[Any, ...]] = []
        for name in self.block_names():
            times = [{b.block: b.ms for b in v.blocks}.get(name) for v in self.variants]
            rows.append((name, modules.get(name, ""), *times))
        for kind in KINDS:
            rows.append((f"all {KIND_WORDS[kind]}", "", *(v.split()[kind] for v in self.variants)))
        rows.append(("blocks, sum", "", *(v.blocks_ms for v in self.variants)))
        rows.append(("graph, median (no profiler)", "", *(v.graph_ms for v in self.variants)))
        rows.append(("letterbox", "", *(v.letterbox_ms for v in self.variants)))
        rows.append(("box decode", "", *(v.decode_ms for v in self.variants)))
        rows.append(("NMS", "", *(v.nms_ms for v in self.variants)))
        memory = {f.variant: f for f in self.footprints}
        if memory:
            for label, key in (("file MB", "file_mb"), ("loading adds MB", "load_mb"), ("peak MB", "peak_mb")):
                rows.append((label, "", *(getattr(memory[v.variant], key) if v.variant in memory else None
                                          for v in self.variants)))  # fmt: skip
        return Table(columns, rows)

    def words(self) -> list[str]:
        """The sums' check, and the largest differences against the reference, in words."""
        out = []
        for v in self.variants:
            verdict = "adds up" if v.adds_up else f"does NOT add up (more than {AGREE:.0%} apart)"
            out.append(f"{v.variant}: blocks sum to {v.blocks_ms:.1f} ms, the graph alone takes {v.graph_ms:.1f} ms "
                       f"({v.agreement:.0%}): the profile {verdict}")  # fmt: skip
        out += [w for v in self.variants if (w := v.coverage_words())]
        out += [f.words() for f in self.footprints]
        ref = next((v for v in self.variants if v.variant == self.reference), None)
        if ref is None:
            return out
        base = ref.split()
        for v in self.variants:
            if v is ref:
                continue
            diff = {k: v.split()[k] - base[k] for k in KINDS}
            ranked_kinds = sorted(diff.items(), key=lambda kv: -abs(kv[1]))
            parts = [f"{'saves' if d < 0 else 'spends'} {abs(d):.1f} ms {'in' if k == 'compute' else 'on'} "
                     f"{KIND_WORDS[k]}" for k, d in ranked_kinds if abs(d) >= 0.1]  # fmt: skip
            if parts:
                out.append(f"{v.variant} against {ref.variant}: " + ", ".join(parts))
            ranked = sorted(v.blocks, key=lambda b: -abs(b.ms - {c.block: c.ms for c in ref.blocks}.get(b.block, 0)))
            if ranked:
                b = ranked[0]
                was = {c.block: c.ms for c in ref.blocks}.get(b.block, 0.0)
                out.append(f"{v.variant}: the largest block difference is {b.block} ({b.module}), "
                           f"{b.ms:.2f} ms against {was:.2f} ms")  # fmt: skip
        return out

    def text(self) -> str:
        return "\n".join([self.table().to_text(), "", *self.words()])


def group_blocks(nodes: Sequence[NodeTime], module_names: bool) -> list[BlockTime]:
    """Nodes in execution order -> blocks; a node without a block name joins the block before it (the first
    ones the block after). ``module_names``: the nodes' ops name the block's module (PyTorch's modules)."""
    owner: list[str] = []
    last = ""
    for node in nodes:
        last = block_in(node.name) or last
        owner.append(last)
    first = next((o for o in owner if o), "other")
    owner = [o or first for o in owner]
    grouped: dict[str, list[NodeTime]] = {}
    for node, block in zip(nodes, owner, strict=True):
        grouped.setdefault(block, []).append(node)
    out = []
    for block, members in sorted(grouped.items(), key=lambda kv: block_index(kv[0])):
        split = {k: sum(n.ms for n in members if n.kind == k) for k in KINDS}
        module = members[0].op.removeprefix("Legacy") if module_names else module_of([n.name for n in members])
        kernels = Counter(n.op for n in members)
        precisions = Counter(n.precision for n in members if n.kind == "compute" and n.precision)
        convs = Counter(n.precision for n in members if "conv" in n.op.lower() and n.precision and not module_names)
        out.append(BlockTime(block, module, sum(n.ms for n in members), split, dict(kernels), dict(precisions),
                             dict(convs)))  # fmt: skip
    return out


def profile_variants(
    detectors: Sequence[Detector],
    image: np.ndarray,
    runs: int = 20,
    progress: Progress = no_progress,
) -> list[VariantProfile]:
    """Each detector's per-block profile on ``image``. Round after round, every variant makes one profiled call
    and one plain call of each stage (letterbox, graph, box decode, NMS) in turn with the others, so the blocks'
    sum and the graph's median come from the same minutes of the machine; the first round is left out."""
    tensor, _ = preprocess(image, detectors[0].hw_for(image.shape[:2]))
    params = PostParams()
    stages: list[dict[str, list[float]]] = [{"letterbox": [], "graph": [], "decode": [], "nms": []} for _ in detectors]
    with contextlib.ExitStack() as stack:
        profilers = [stack.enter_context(det.backend.profiler()) for det in detectors]
        for r in range(runs + 1):
            progress(r / (runs + 1), f"round {r + 1}/{runs + 1}: profiled and plain calls, variants in turn")
            for det, profiler, st in zip(detectors, profilers, stages, strict=True):
                profiler.run(tensor)
                t0 = time.perf_counter()
                batch, lb = preprocess(image, det.hw_for(image.shape[:2]))
                t1 = time.perf_counter()
                if det.head is not None:
                    outs = det.backend.infer_heads(batch)
                    t2 = time.perf_counter()
                    out = det.head.decode(outs, params.conf)
                else:
                    out = det.backend.infer(batch)
                    t2 = time.perf_counter()
                t3 = time.perf_counter()
                det.postprocess(RawOutput(out, lb, 0.0, 0.0), params)
                t4 = time.perf_counter()
                if r:  # the first round allocates
                    for key, s in (("letterbox", t1 - t0), ("graph", t2 - t1), ("decode", t3 - t2), ("nms", t4 - t3)):
                        st[key].append(s * 1000)
        nodes = [profiler.nodes() for profiler in profilers]
    progress(1.0, "profiled")
    med = statistics.median
    out_profiles = []
    for det, found, st in zip(detectors, nodes, stages, strict=True):
        torch = det.backend.runtime in (Runtime.TORCH, Runtime.TORCH_CUDA)  # its nodes are the blocks' modules
        out_profiles.append(
            VariantProfile(
                str(det.variant),
                det.backend.description,
                group_blocks(found, module_names=torch),
                med(st["letterbox"]),
                med(st["graph"]),
                med(st["decode"]) if det.head is not None else 0.0,
                med(st["nms"]),
            )
        )
    return out_profiles
