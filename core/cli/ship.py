"""Ship what was measured: a zip with the variant's model file, its settings, a standalone infer.py and verify.py.

``python -m core ship --variant ort:int8 --out bundle.zip [--from compare.json]`` (the model options as in every
command). With ``--from`` (a ``compare --json`` result) the bundle records that result's detections for the variant
and the images it was measured on, after checking that the file built here reproduces them; without, it runs the
variant on the sample pictures and records what it finds. ``verify.py`` re-checks them on the target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli import options
from core.data import sample_images
from core.deploy.bundle import (
    ShipRun,
    check_compare_settings,
    check_shippable,
    compare_decision,
    compare_params,
    images_from_compare,
    make_bundle,
    sample_ship_images,
)
from core.errors import InputError
from core.progress import TqdmProgress
from core.runtime import BackendOptions
from core.variants import Variant

GROUPS = (options.model(), options.post, options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", required=True, help="the variant to ship, e.g. ort:int8, ov:fp32, ort:int8@NAME")
    p.add_argument("--out", required=True, type=Path, help="the zip to write, e.g. bundle.zip")
    p.add_argument("--from", dest="result", type=Path, metavar="RESULT.json",
                   help="a compare --json result: record its detections of the variant on its images")  # fmt: skip


def run(args: argparse.Namespace) -> ShipRun:
    variant = Variant.parse(args.variant)
    check_shippable(variant)
    if args.out.suffix.lower() != ".zip":
        raise InputError(f"--out names the zip to write (NAME.zip), got {args.out}")
    doc = None
    if args.result is not None:
        try:
            doc = json.loads(args.result.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"--from {args.result}: not a readable JSON result ({exc})") from exc
        if not isinstance(doc, dict):
            raise InputError(f"--from {args.result}: not a JSON result object")
        images = images_from_compare(doc, str(variant), args.result.resolve().parent)
        params = compare_params(doc)
    else:
        images = sample_ship_images(sample_images())
        params = options.post_params(args)
    store = options.store(args)
    if doc is not None:
        check_compare_settings(doc, store)
    note = store.calibration_note
    if note and variant.spec.artefact.int8_flavour is not None:
        print(f"note: {note} (--calib DIR)", file=sys.stderr)
    with TqdmProgress(f"ship {variant}") as bar:
        bundle = make_bundle(
            store,
            variant,
            images,
            params,
            decision=compare_decision(doc, str(variant)) if doc is not None else None,
            recorded_from=f"compare result {args.result.name}" if args.result else "the sample pictures",
            options=BackendOptions(threads=args.threads),
            progress=bar,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part")
    tmp.write_bytes(bundle.data)
    tmp.replace(args.out)
    m = bundle.manifest
    return ShipRun(
        variant=str(variant),
        out=str(args.out),
        bytes=len(bundle.data),
        model_file=m["model"]["file"],
        model_sha256=m["model"]["sha256"],
        source_file=m["model"]["source_file"],
        source_sha256=m["model"]["source_sha256"],
        recorded_from=m["recorded_from"],
        rerun=bundle.rerun,
        images=[{"name": im["name"], "sha256": im["sha256"], "included": "file" in im,
                 "detections": None if im["detections"] is None else len(im["detections"])} for im in m["images"]],
        entries=bundle.entries,
    )  # fmt: skip
