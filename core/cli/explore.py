"""Precision explorer: INT8 drift, per-block sensitivity, a searched recipe.

``python -m core explore --model M --calib DIR --data VAL [--target-drop P | --target-speedup S]
[--fidelity-video CLIP | --fidelity-images DIR] [--fidelity-count N] [--json]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import options
from core.data import load_dataset
from core.errors import InputError, Setting
from core.precision import DEFAULT_FIDELITY_IMAGES, ExploreResult, ExploreSettings, explore, save_best
from core.progress import TqdmProgress
from core.variants import Int8Flavour, check_recipe_name

GROUPS = (options.model(), options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    data = "labelled folder (images/ + labels/): confirms the chosen recipe, never ranks candidates"
    p.add_argument("--data", type=Path, required=True, help=data)
    flavours = "cpu: what ort:int8 runs (searched for speed and accuracy); trt: TensorRT's (for accuracy)"
    p.add_argument("--flavour", choices=[f.value for f in Int8Flavour], default=Int8Flavour.CPU.value, help=flavours)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-drop", type=options.between(0.0, 100.0),
                        help="lose at most this many mAP50-95 points (default 0.5)")  # fmt: skip
    target.add_argument("--target-speedup", type=options.positive,
                        help="at least this speed-up over FP32, then best accuracy")  # fmt: skip
    source = p.add_mutually_exclusive_group()
    source.add_argument("--fidelity-video", type=Path, metavar="CLIP",
                        help="rank candidates on frames spread over this clip (unlabelled)")  # fmt: skip
    source.add_argument("--fidelity-images", type=Path, metavar="DIR",
                        help="... or on this folder's images (default: the calibration folder's images that "
                        "calibration does not use, topped up with --data's images, labels unused)")  # fmt: skip
    p.add_argument("--fidelity-count", type=options.at_least(16), default=DEFAULT_FIDELITY_IMAGES,
                   help=f"fidelity images at most (default {DEFAULT_FIDELITY_IMAGES})")  # fmt: skip
    p.add_argument("--images", type=options.at_least(1), default=16, help="calibration images for the drift")
    p.add_argument("--blocks", type=options.at_least(1), default=None,
                   help="sensitivity over the K lowest-SQNR blocks (default all)")  # fmt: skip
    p.add_argument("--max-images", type=options.at_least(1), default=None, help="use at most this many images")
    p.add_argument("--name", help="save the chosen recipe under this name (default auto-<flavour>-<target>)")
    p.add_argument("--no-save", action="store_true", help="do not save the chosen recipe")


def run(args: argparse.Namespace) -> ExploreResult:
    settings = ExploreSettings(
        flavour=Int8Flavour(args.flavour),
        target_drop=args.target_drop,
        target_speedup=args.target_speedup,
        fidelity_video=args.fidelity_video,
        fidelity_images=args.fidelity_images,
        fidelity_count=args.fidelity_count,
        drift_images=args.images,
        blocks=args.blocks,
        max_images=args.max_images,
    )
    if args.name:
        check_recipe_name(args.name)
    store = options.store(args)
    if store.calib_dir is None or store.calib_bundled:
        raise InputError("the explorer needs calibration images of your own", setting=Setting.CALIBRATION)
    if args.name and args.name in store.recipes.names():
        raise InputError(f"a recipe named {args.name!r} exists already (python -m core recipes --delete {args.name})")
    dataset = load_dataset(args.data)
    with TqdmProgress("explore") as bar:
        result = explore(store, dataset, settings, bar)
    if result.best is not None and not args.no_save:
        recipe = save_best(store, result, args.name)
        print(f"saved recipe {recipe.name!r}: run it as {result.best.variant}", file=sys.stderr)
    return result
