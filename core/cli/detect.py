"""Detect objects in images.

``python -m core detect IMG... --model M --variant ort:fp32 [--save DIR] [--json]``
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.cli import options
from core.cli.registry import EXIT_PARTIAL
from core.data import load_image
from core.errors import InputError
from core.measure import transfer_words
from core.report import annotate
from core.results import Result
from core.variants import CPU_VARIANTS, REFERENCE, Variant

GROUPS = (options.model(), options.post, options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", type=Path)
    all_variants = ", ".join(str(v) for v in CPU_VARIANTS)
    p.add_argument("--variant", default=str(REFERENCE), help=f"runtime:precision (e.g. {all_variants})")
    p.add_argument("--save", type=Path, help="write annotated images into this folder")


@dataclass
class DetectRun(Result):
    """One variant's detections on each image (or the reason an image could not be read)."""

    kind = "detect"
    variant: str
    model: str
    imgsz: int
    results: list[dict[str, Any]]
    remote: dict[str, Any] = field(default_factory=dict)  # where a variant on a cluster node ran, its transfer
    transfer: list[float] = field(default_factory=list)
    shape: str = "square"  # the input shape policy it ran (core.variants.Shape)

    def payload(self) -> dict[str, Any]:
        out = {"variant": self.variant, "model": self.model, "imgsz": self.imgsz, "shape": self.shape,
               "results": self.results}  # fmt: skip
        return out | self.remote

    @property
    def failed(self) -> int:
        return sum("error" in r for r in self.results)

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed else 0

    def text(self) -> str:
        lines = [f"{self.model} @ {self.shape} {self.imgsz}, {self.variant}"]
        if self.remote:
            lines.append(f"{self.variant} runs {self.remote['runs_on']}; the times below are the node's")
            if self.transfer:
                lines.append(transfer_words(self.variant, self.transfer))
        for r in self.results:
            if "error" in r:
                lines.append(f"{r['image']}: ERROR {r['error']}")
                continue
            t = r["timings_ms"]
            lines.append(
                f"{r['image']}: {len(r['detections'])} objects at {r['input_hw'][1]}x{r['input_hw'][0]}  "
                f"({t['preprocess']:.1f} + {t['inference']:.1f} + {t['postprocess']:.1f} ms)"
            )
            for d in r["detections"]:
                box = ", ".join(f"{v:.0f}" for v in d["xyxy"])
                lines.append(f"  {d['class_name']:<16} {d['confidence']:.3f}  [{box}]")
        return "\n".join(lines)


def run(args: argparse.Namespace) -> DetectRun:
    import sys

    variant = Variant.parse(args.variant)
    params = options.post_params(args)
    store = options.store(args)
    results: list[dict[str, Any]] = []
    with options.open_detector(store, variant, args) as det:
        det.warmup(2)  # first calls allocate; timings below are steady-state
        for path in args.images:
            try:
                image = load_image(path)
            except InputError as exc:
                results.append({"image": str(path), "error": str(exc)})
                continue
            hw = det.hw_for(image.shape[:2])  # rect: a new shape's first call is untimed (Detector)
            res = det.detect(image, params)
            results.append(
                {"image": str(path), "input_hw": list(hw), "detections": res.detections.to_records(),
                 "timings_ms": res.timings.to_dict()}
            )  # fmt: skip
            if args.save:
                from PIL import Image

                args.save.mkdir(parents=True, exist_ok=True)
                Image.fromarray(annotate(image, res.detections)).save(args.save / f"{path.stem}.jpg", quality=92)
        remote = options.transfer(det) | {"runs_on": det.backend.description} if det.node is not None else {}
        transfer = list(det.transfer_ms)
    out = DetectRun(
        str(variant), store.source.name, store.input_size, results, remote, transfer, shape=store.shape.value
    )
    if out.failed:
        print(f"error: {out.failed} of {len(args.images)} images could not be read", file=sys.stderr)
    return out
