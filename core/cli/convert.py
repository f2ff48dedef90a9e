"""Build an artefact and print its path.

``python -m core convert --model M (--to fp16|int8 [--flavour cpu|trt] | --variant ort:int8@NAME)``
"""

from __future__ import annotations

import argparse

from core.cli import options
from core.progress import TqdmProgress
from core.variants import Artefact, Int8Flavour, Precision, Variant

GROUPS = (options.model(),)


def arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", choices=[x.value for x in Precision])
    what.add_argument("--variant", help="the file this variant runs from, e.g. ort:int8@NAME (a saved recipe)")
    p.add_argument("--flavour", choices=[f.value for f in Int8Flavour], default=Int8Flavour.CPU.value)


def run(args: argparse.Namespace) -> int:
    store = options.store(args)
    if args.variant:
        variant = Variant.parse(args.variant)
        with TqdmProgress(f"build {variant}") as bar:
            path = store.variant_artefact(variant, bar)
    else:
        artefact = Artefact.of(Precision(args.to), Int8Flavour(args.flavour))
        with TqdmProgress(f"convert to {artefact.value}") as bar:
            path = store.artefact(artefact, bar)
    print(path)
    return 0
