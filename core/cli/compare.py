"""The same images through 1-4 variants, diffed against a reference variant.

``python -m core compare IMG... --model M --variants ort:fp32,ort:int8 [--save DIR] [--json]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import options
from core.errors import InputError
from core.measure import MIN_CONF, CompareRun, ImageComparison, read_image_files
from core.progress import TqdmProgress
from core.report import save_images
from core.variants import REFERENCE, Variant, parse_variants, with_reference

GROUPS = (options.model(), options.post, options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--variants", default="ort:fp32,ort:int8", help="1 to 4 variants, e.g. ort:fp32,ort:int8")
    p.add_argument("--reference", default=str(REFERENCE), help=f"diffs are against it (default {REFERENCE})")
    p.add_argument("--warmup", type=options.at_least(0), default=2, help="untimed calls per variant first (default 2)")
    p.add_argument("--runs", type=options.at_least(1), default=5, help="timed runs per image and variant (default 5)")
    p.add_argument("--save", type=Path, help="write each variant's annotated image and its diff into this folder")


def run(args: argparse.Namespace) -> CompareRun:
    variants = parse_variants(args.variants)
    reference = Variant.parse(args.reference)
    if not 1 <= len(variants) <= 4:
        raise InputError(f"--variants takes 1 to 4 variants, got {len(variants)}")
    params = options.post_params(args)
    images = read_image_files(args.images)
    for line in images.duplicates:
        print(f"note: {line}", file=sys.stderr)
    for line in images.errors:
        print(f"error: {line}", file=sys.stderr)
    if not images.images:
        raise InputError("none of the given files is an image this tool can read")
    store = options.store(args)
    needed = with_reference(variants, reference)
    detectors = [options.open_detector(store, v, args, in_turn=len(needed) > 1) for v in needed]
    try:
        for det in detectors:
            det.warmup(args.warmup)
        comparison = ImageComparison(
            detectors, reference, min_conf=min(MIN_CONF, params.conf), runs=args.runs, model_key=str(store.directory)
        )
        with TqdmProgress("compare") as bar:
            comparison.run(images.images, bar)
        result = comparison.result(images.images, params)
    finally:
        for det in detectors:
            det.close()
    if args.save:
        saved = save_images(result, images.images, args.save)
        print(f"wrote {len(saved)} images to {args.save}", file=sys.stderr)
    return CompareRun(store.source.name, store.input_size, result, args.runs, unreadable=len(images.errors),
                      shape=store.shape.value)  # fmt: skip
