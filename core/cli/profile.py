"""Where the time goes: each variant's milliseconds per YOLOv5 block, from its runtime's own profiler.

``python -m core profile [IMAGE] --variants ort:fp32,ort:int8 [--runs 20] [--json]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import options
from core.data import default_sample, load_image
from core.measure import ProfileRun, measure_footprint, profile_variants
from core.progress import TqdmProgress
from core.variants import REFERENCE, parse_variants

GROUPS = (options.model(), options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="?", type=Path, help="the image to profile (default: the bus.jpg sample)")
    p.add_argument("--variants", default="ort:fp32,ort:int8", help="variants side by side (default ort:fp32,ort:int8)")
    p.add_argument("--runs", type=options.at_least(1), default=20, help="profiled calls per variant (median)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the memory footprint (a fresh process per variant: a few seconds each)")  # fmt: skip


def run(args: argparse.Namespace) -> ProfileRun:
    variants = parse_variants(args.variants)
    store = options.store(args)
    image_path = args.image or default_sample()
    image = load_image(image_path)
    detectors = [options.open_detector(store, v, args, in_turn=len(variants) > 1) for v in variants]
    try:
        with TqdmProgress("profile") as bar:
            profiles = profile_variants(detectors, image, runs=args.runs, progress=bar)
        footprints = [] if args.no_memory else [
            measure_footprint(det, store.variant_artefact(det.variant)) for det in detectors if det.node is None
        ]  # fmt: skip
    finally:
        for det in detectors:
            det.close()
    reference = str(REFERENCE) if REFERENCE in variants else str(variants[0])
    return ProfileRun(
        store.source.name, store.input_size, str(image_path), args.runs, reference, profiles, footprints,
        shape=store.shape.value,
    )  # fmt: skip
