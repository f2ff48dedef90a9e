"""Where an INT8 file's activations drift from FP32's, per tensor and block.

``python -m core drift --model M --calib DIR [--variant ort:int8] [--images N] [--top K] [--json]``
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.cli import options
from core.data import load_image
from core.errors import InputError
from core.model import list_images
from core.precision import DriftReport, layer_drift
from core.progress import TqdmProgress
from core.results import Result
from core.runtime import preprocess
from core.tables import Table
from core.variants import Variant

GROUPS = (options.model(), options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", default="ort:int8", help="the quantized variant whose file is examined")
    p.add_argument("--images", type=options.at_least(1), default=16, help="images of --calib to run (default 16)")
    p.add_argument("--top", type=options.at_least(0), default=10, help="tensors to list, lowest SQNR first")


@dataclass
class DriftRun(Result):
    """The drift of one variant's INT8 file, and which file and images it was measured on."""

    kind = "drift"
    model: str
    variant: str
    file: str
    images_from: str
    report: DriftReport
    top: int = field(default=10, metadata={"json": False})

    def payload(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "variant": self.variant,
            "file": self.file,
            "images": self.report.images,
            "images_from": self.images_from,
            "blocks": [vars(b) for b in self.report.blocks],
            "tensors": [vars(t) for t in self.report.tensors],
        }

    def table(self) -> Table:
        return self.report.table()

    def text(self) -> str:
        lines = [f"{self.variant} ({self.file}) vs FP32 on {self.report.images} images of {self.images_from}"]
        lines.append(self.table().to_text())
        lines.append(f"\nlowest {min(self.top, len(self.report.tensors))} tensors:")
        lines += [f"  {t.sqnr_db:6.1f} dB  {t.tensor}" for t in self.report.tensors[: self.top]]
        return "\n".join(lines)


def run(args: argparse.Namespace) -> DriftRun:
    variant = Variant.parse(args.variant)
    if variant.node:
        raise InputError(f"{variant}: drift runs the INT8 file in this process (the one a node runs is the same "
                         f"file); drop the node: --variant {variant.here}")  # fmt: skip
    if variant.spec.artefact.int8_flavour is None:
        raise InputError(f"{variant} is not quantized: drift compares an INT8 file with FP32 (e.g. ort:int8)")
    store = options.store(args)
    with TqdmProgress("prepare") as bar:
        quantized = store.variant_artefact(variant, bar)  # says what is missing (calibration images)
    fp32 = store.fp32()
    files = list_images(Path(store.calib_dir))[: args.images]  # type: ignore[arg-type]
    inputs = [preprocess(load_image(f), store.input_hw)[0] for f in files]
    with TqdmProgress("drift") as bar:
        report = layer_drift(fp32, quantized, inputs, bar)
    return DriftRun(store.source.name, str(variant), quantized.name, str(store.calib_dir), report, args.top)
