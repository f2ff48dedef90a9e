"""The command-line interface: ``detect | compare | bench | eval | video | report | convert | drift | explore |
recipes | doctor``.

Results go to stdout (a table, or JSON with ``--json``); progress bars and errors go to stderr.
Errors exit non-zero with one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import config
from core.errors import CoreError, InputError
from core.progress import TqdmProgress
from core.runtime import PostParams
from core.variants import (
    CPU_VARIANTS,
    REFERENCE,
    Artefact,
    Int8Flavour,
    Precision,
    Variant,
    parse_variants,
    with_reference,
)

if TYPE_CHECKING:
    from core.model import ModelStore
    from core.runtime import Detector

EXIT_USER_ERROR = 2
EXIT_PARTIAL = 1


# ---------------------------------------------------------------------------------------------
# argument parsing


def _model_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    g = p.add_argument_group("model")
    what = "a .pt / .onnx path, or an official name (yolov5n..x)"
    if default is None:
        g.add_argument("--model", "-m", required=True, help=what)
    else:
        g.add_argument("--model", "-m", default=default, help=f"{what}; default {default}")
    g.add_argument("--imgsz", type=int, default=None, help="network input size (default: the model's, else 640)")
    g.add_argument("--trust", action="store_true", help="allow unpickling an ultralytics .pt (runs code from it)")
    g.add_argument("--names", type=Path, help="class names file for an .onnx without names metadata")
    g.add_argument("--cache-dir", type=Path, help=f"artefact cache (default ${config.ENV_CACHE_DIR} or ~/.cache)")
    g.add_argument("--models-dir", type=Path, help=f"official checkpoints (default ${config.ENV_MODELS_DIR})")
    g.add_argument("--calib", type=Path, help="folder of calibration images (needed to build INT8)")
    g.add_argument("--calib-method", choices=["minmax", "entropy", "percentile"], help="INT8 calibration method")
    g.add_argument("--calib-images", type=int, help="use at most this many calibration images")
    g.add_argument("--threads", type=int, default=None, help="CPU inference threads (default: physical cores)")
    g.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="a Ray cluster (HOST:PORT, or auto) for variants placed on nodes: NODE/ort:fp32 "
                   "(default $YOLOLAB_CLUSTER)")  # fmt: skip


def _post_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    p.add_argument("--max-det", type=int, default=300, help="maximum detections per image")
    p.add_argument("--classes", type=str, default=None, help="keep only these class ids, e.g. 0,2,5")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    all_variants = ", ".join(str(v) for v in CPU_VARIANTS)

    p = sub.add_parser("detect", help="detect objects in images")
    p.add_argument("images", nargs="+", type=Path)
    _model_args(p)
    p.add_argument("--variant", default=str(REFERENCE), help=f"runtime:precision (e.g. {all_variants})")
    _post_args(p)
    p.add_argument("--save", type=Path, help="write annotated images into this folder")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("bench", help="latency percentiles per variant")
    _model_args(p)
    p.add_argument("--variants", default=",".join(str(v) for v in CPU_VARIANTS))
    p.add_argument("--image", type=Path, help="image to run (default: the bus.jpg sample)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--batch", type=int, default=1, help="throughput mode: images per runtime call (default 1)")
    _post_args(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("eval", help="mAP and agreement with FP32 on a labelled YOLO-format folder")
    _model_args(p)
    p.add_argument("--data", type=Path, required=True, help="folder with images/ and labels/")
    p.add_argument("--variants", default=",".join(str(v) for v in CPU_VARIANTS))
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--batch", type=int, default=1, help="images per runtime call (default 1)")
    p.add_argument("--shards", type=int, default=None,
                   help="with --cluster: split the images over the cluster, this many chunks at a time; the result "
                   "is the same as one process's")  # fmt: skip
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("compare", help="the same images through 1-4 variants, diffed against a reference variant")
    p.add_argument("images", nargs="+", type=Path)
    _model_args(p)
    p.add_argument("--variants", default="ort:fp32,ort:int8", help="1 to 4 variants, e.g. ort:fp32,ort:int8")
    p.add_argument("--reference", default=str(REFERENCE), help=f"diffs are against it (default {REFERENCE})")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per variant first (default 2)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per image and variant (default 5)")
    _post_args(p)
    p.add_argument("--save", type=Path, help="write each variant's annotated image and its diff into this folder")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("report", help="one self-contained HTML report from the --json outputs of the other commands")
    p.add_argument("results", nargs="+", type=Path, help="JSON files printed by compare, bench, eval or video --json")
    p.add_argument("--out", "-o", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--title", default="YOLO variant comparison")

    p = sub.add_parser("convert", help="build an artefact and print its path")
    _model_args(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", choices=[x.value for x in Precision])
    what.add_argument("--variant", help="the file this variant runs from, e.g. ort:int8@NAME (a saved recipe)")
    p.add_argument("--flavour", choices=[f.value for f in Int8Flavour], default=Int8Flavour.CPU.value)

    p = sub.add_parser("explore", help="precision explorer: INT8 drift, per-block sensitivity, a searched recipe")
    _model_args(p)
    p.add_argument("--data", type=Path, required=True, help="labelled folder (images/ + labels/), split search/report")
    flavours = "cpu: what ort:int8 runs (searched for speed and accuracy); trt: TensorRT's (for accuracy)"
    p.add_argument("--flavour", choices=[f.value for f in Int8Flavour], default=Int8Flavour.CPU.value, help=flavours)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-drop", type=float, help="lose at most this many mAP50-95 points (default 0.5)")
    target.add_argument("--target-speedup", type=float, help="at least this speed-up over FP32, then best accuracy")
    p.add_argument("--search-split", type=float, default=0.5, help="share of --data the search sees (default 0.5)")
    p.add_argument("--images", type=int, default=16, help="calibration images for the drift (default 16)")
    p.add_argument("--blocks", type=int, default=None, help="sensitivity over the K lowest-SQNR blocks (default all)")
    p.add_argument("--max-images", type=int, default=None, help="use at most this many labelled images")
    p.add_argument("--name", help="save the chosen recipe under this name (default auto-<flavour>-<target>)")
    p.add_argument("--no-save", action="store_true", help="do not save the chosen recipe")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("cluster", help="the Ray cluster's nodes and, per node, which runtimes can run there")
    p.add_argument("--cluster", default=None, metavar="ADDRESS", help="HOST:PORT or auto (default $YOLOLAB_CLUSTER)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("recipes", help="the model's saved INT8 recipes (run them as ort:int8@NAME)")
    _model_args(p, default="yolov5n")
    p.add_argument("--delete", metavar="NAME", help="delete this recipe (its built file stays cached)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("drift", help="where an INT8 file's activations drift from FP32's, per tensor and block")
    _model_args(p)
    p.add_argument("--variant", default="ort:int8", help="the quantized variant whose file is examined")
    p.add_argument("--images", type=int, default=16, help="images of --calib to run (default 16)")
    p.add_argument("--top", type=int, default=10, help="tensors to list, lowest SQNR first")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("video", help="side-by-side annotated H.264 video and per-frame latency")
    p.add_argument("video", type=Path)
    _model_args(p)
    p.add_argument("--variants", default="ort:fp32,ort:int8")
    p.add_argument("--output", "-o", type=Path, required=True, help="the side-by-side MP4 to write")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--csv", type=Path, help="also write per-frame latencies here")
    _post_args(p)
    p.add_argument("--json", action="store_true")

    from core.cli.doctor import DEFAULT_FRAMES

    p = sub.add_parser("doctor", help="what can run on this machine, and why not")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--gpu-check",
        action="store_true",
        help="build every GPU variant that can run here and compare its detections with ort:fp32 on the CPU "
        "(exit 0: all pass, or no GPU variant can run here; 1: a variant failed)",
    )
    _model_args(p, default="yolov5n")
    g = p.add_argument_group("--gpu-check inputs (beside the sample images)")
    g.add_argument("--video", type=Path, help="also run the first frames of this clip")
    g.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"frames of --video (default {DEFAULT_FRAMES})")
    return parser


# ---------------------------------------------------------------------------------------------
# commands


def _store(args: argparse.Namespace) -> ModelStore:
    from core.model import CalibrationMethod, Int8Options, open_store

    int8 = Int8Options()
    if args.calib_method:
        int8 = replace(int8, method=CalibrationMethod(args.calib_method))
    if args.calib_images:
        if args.calib_images < 1:
            raise InputError(f"--calib-images must be at least 1, got {args.calib_images}")
        int8 = replace(int8, max_images=args.calib_images)
    _join_cluster(getattr(args, "cluster", None))
    with TqdmProgress("model") as bar:
        return open_store(
            args.model,
            cache_dir=args.cache_dir,
            models_dir=args.models_dir,
            trust=args.trust,
            names=args.names,
            imgsz=args.imgsz,
            calib_dir=args.calib,
            int8=int8,
            progress=bar,
        )


def _join_cluster(address: str | None) -> None:
    """Connect when asked; an address that does not answer is one line, and the local variants still run."""
    import os

    from core.cluster import ENV_CLUSTER, connect

    if not (address or os.environ.get(ENV_CLUSTER)):
        return
    try:
        connect(address)
    except CoreError as exc:
        print(f"warning: {exc}; variants in this process run as usual", file=sys.stderr)


def _post_params(args: argparse.Namespace) -> PostParams:
    classes = None
    if args.classes:
        try:
            classes = tuple(int(c) for c in args.classes.split(",") if c.strip())
        except ValueError:
            raise InputError(f"--classes expects comma-separated class ids, got {args.classes!r}") from None
    return PostParams(conf=args.conf, iou=args.iou, max_det=args.max_det, classes=classes)


def _open(store: ModelStore, variant: Variant, args: argparse.Namespace, in_turn: bool = False) -> Detector:
    """``in_turn``: several variants will alternate frame by frame, so CPU threads must not spin idle."""
    from core.runtime import BackendOptions

    with TqdmProgress(f"prepare {variant}") as bar:
        return store.open_detector(variant, BackendOptions.for_turns(in_turn, args.threads), progress=bar)


def cmd_detect(args: argparse.Namespace) -> int:
    from core.data import load_image
    from core.report import annotate

    variant = Variant.parse(args.variant)
    params = _post_params(args)
    store = _store(args)
    results: list[dict[str, Any]] = []
    failed = 0
    with _open(store, variant, args) as det:
        det.warmup(2)  # first calls allocate; timings below are steady-state
        for path in args.images:
            try:
                image = load_image(path)
            except InputError as exc:
                failed += 1
                results.append({"image": str(path), "error": str(exc)})
                continue
            res = det.detect(image, params)
            results.append(
                {
                    "image": str(path),
                    "detections": res.detections.to_records(),
                    "timings_ms": res.timings.to_dict(),
                }
            )
            if args.save:
                from PIL import Image

                args.save.mkdir(parents=True, exist_ok=True)
                Image.fromarray(annotate(image, res.detections)).save(args.save / f"{path.stem}.jpg", quality=92)
        remote = _transfer(det) | {"runs_on": det.backend.description} if variant.node else {}
        transfer = list(det.transfer_ms)
    out = {"variant": str(variant), "model": store.source.name, "imgsz": store.input_size, "results": results}
    out |= remote
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        if remote:
            from core.measure import transfer_words

            print(f"{variant} runs {remote['runs_on']}; the times below are the node's")
            if transfer:
                print(transfer_words(str(variant), transfer))
        for r in results:
            if "error" in r:
                print(f"{r['image']}: ERROR {r['error']}")
                continue
            t = r["timings_ms"]
            print(
                f"{r['image']}: {len(r['detections'])} objects  "
                f"({t['preprocess']:.1f} + {t['inference']:.1f} + {t['postprocess']:.1f} ms)"
            )
            for d in r["detections"]:
                box = ", ".join(f"{v:.0f}" for v in d["xyxy"])
                print(f"  {d['class_name']:<16} {d['confidence']:.3f}  [{box}]")
    if failed:
        print(f"error: {failed} of {len(args.images)} images could not be read", file=sys.stderr)
    return EXIT_PARTIAL if failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from core.data import default_sample, load_image
    from core.measure import benchmark_variants
    from core.runtime import system_info

    variants = parse_variants(args.variants)
    if args.warmup < 0 or args.iterations < 1:
        raise InputError("--warmup must be >= 0 and --iterations >= 1")
    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    params = _post_params(args)
    store = _store(args)
    image_path = args.image or default_sample()
    image = load_image(image_path)
    detectors = [_open(store, v, args) for v in variants]  # build everything before timing anything
    try:
        with TqdmProgress("bench") as bar:
            rows = benchmark_variants(
                detectors,
                image,
                warmup=args.warmup,
                iterations=args.iterations,
                params=params,
                progress=bar,
                batch=args.batch,
            )
    finally:
        for det in detectors:
            det.close()
    out = {
        "system": system_info(),
        "model": store.source.name,
        "imgsz": store.input_size,
        "image": str(image_path),
        "batch_size": args.batch,
        "variants": [r.to_dict() | _transfer(det) for r, det in zip(rows, detectors, strict=True)],
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        from core.measure import bench_table

        print(
            f"{store.source.name} @ {store.input_size}, {image_path.name}, {args.iterations} iterations, "
            f"batch size {args.batch}"
        )
        print(bench_table(rows).to_text())
    return 0


def _sharded_eval(store: ModelStore, variants: list[Variant], needed: list[Variant], dataset: Any, shards: int) -> Any:
    from core.cluster import current, sharded_collect
    from core.measure import summarize

    cluster = current()
    with TqdmProgress(f"eval in shards over {len(cluster.nodes())} node(s)") as bar:
        got, shown, unreadable = sharded_collect(cluster, store, needed, dataset.items, shards, PostParams(), bar)
    dataset.inventory.unreadable_images += unreadable
    return summarize(got[: len(variants)], got[needed.index(REFERENCE)], shown)


def _transfer(det: Detector) -> dict[str, Any]:
    """A variant on a cluster node: the object-store and call overhead per call, apart from its latency."""
    samples = det.transfer_ms
    if det.node is None or not samples:
        return {}
    from core.measure import transfer_stats

    return {"transfer_ms": transfer_stats(samples), "node": det.node.to_dict()}


def cmd_eval(args: argparse.Namespace) -> int:
    from core.data import load_dataset
    from core.measure import evaluate

    variants = parse_variants(args.variants)
    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    store = _store(args)
    dataset = load_dataset(args.data, args.max_images)
    needed = with_reference(variants)
    if args.shards:
        results = _sharded_eval(store, variants, needed, dataset, args.shards)
    else:
        detectors = {v: _open(store, v, args, in_turn=len(needed) > 1) for v in needed}
        try:
            with TqdmProgress("eval") as bar:
                results = evaluate(
                    [detectors[v] for v in variants],
                    dataset,
                    reference=detectors[REFERENCE],
                    progress=bar,
                    batch_size=args.batch,
                )
        finally:
            for det in detectors.values():
                det.close()
    rep = dataset.inventory
    out = {
        "model": store.source.name,
        "imgsz": store.input_size,
        "data": str(args.data),
        "dataset": {
            "summary": rep.summary(),
            "images": rep.images,
            "background": rep.background,
            "boxes": rep.boxes,
            "orphan_labels": rep.orphan_labels,
            "bad_lines": rep.bad_lines,
            "unreadable_images": rep.unreadable_images,
            "other_files": rep.other_files,
        },
        "reference": str(REFERENCE),
        "batch_size": args.batch,
        "variants": [r.to_dict() for r in results],
    }
    if args.shards:
        out["latency_source"] = SHARDED_LATENCY
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        from core.measure import eval_table

        print(f"{store.source.name} @ {store.input_size} on {args.data}: {rep.summary()}; batch size {args.batch}")
        print(eval_table(results, str(REFERENCE)).to_text())
        if args.shards:
            print(f"note: {SHARDED_LATENCY}")
    return 0


SHARDED_LATENCY = (
    "p50 ms of a sharded eval comes from its shards: each chunk of 16 images ran on whichever node took it, "
    "one CPU thread, its own fresh sessions; it is no machine's latency (python -m core bench measures that)"
)


def cmd_compare(args: argparse.Namespace) -> int:
    from core.measure import MIN_CONF, ImageComparison, read_image_files
    from core.report import save_images

    variants = parse_variants(args.variants)
    reference = Variant.parse(args.reference)
    if not 1 <= len(variants) <= 4:
        raise InputError(f"--variants takes 1 to 4 variants, got {len(variants)}")
    if args.runs < 1 or args.warmup < 0:
        raise InputError("--runs must be >= 1 and --warmup >= 0")
    params = _post_params(args)
    images = read_image_files(args.images)
    for line in images.duplicates:
        print(f"note: {line}", file=sys.stderr)
    for line in images.errors:
        print(f"error: {line}", file=sys.stderr)
    if not images.images:
        raise InputError("none of the given files is an image this tool can read")
    store = _store(args)
    needed = with_reference(variants, reference)
    detectors = [_open(store, v, args, in_turn=len(needed) > 1) for v in needed]
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
    if args.json:
        out = {"model": store.source.name, "imgsz": store.input_size, **result.to_dict()}
        print(json.dumps(out, indent=2))
    else:
        print(f"{store.source.name} @ {store.input_size}; reference {reference}; {args.runs} timed runs per image")
        print(result.table().to_text())
    return EXIT_PARTIAL if images.errors else 0


def cmd_drift(args: argparse.Namespace) -> int:
    from core.data import load_image
    from core.model import list_images
    from core.precision import layer_drift
    from core.runtime import preprocess

    variant = Variant.parse(args.variant)
    if variant.node:
        raise InputError(f"{variant}: drift runs the INT8 file in this process (the one a node runs is the same "
                         f"file); drop the node: --variant {variant.here}")  # fmt: skip
    if variant.spec.artefact.int8_flavour is None:
        raise InputError(f"{variant} is not quantized: drift compares an INT8 file with FP32 (e.g. ort:int8)")
    if args.images < 1:
        raise InputError(f"--images must be at least 1, got {args.images}")
    store = _store(args)
    with TqdmProgress("prepare") as bar:
        quantized = store.variant_artefact(variant, bar)  # says what is missing (calibration images)
    fp32 = store.fp32()
    files = list_images(Path(store.calib_dir))[: args.images]  # type: ignore[arg-type]
    inputs = [preprocess(load_image(f), store.input_hw)[0] for f in files]
    with TqdmProgress("drift") as bar:
        report = layer_drift(fp32, quantized, inputs, bar)
    if args.json:
        out = {
            "model": store.source.name,
            "variant": str(variant),
            "file": quantized.name,
            "images": report.images,
            "images_from": str(store.calib_dir),
            "blocks": [vars(b) for b in report.blocks],
            "tensors": [vars(t) for t in report.tensors],
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"{variant} ({quantized.name}) vs FP32 on {report.images} images of {store.calib_dir}")
    print(report.table().to_text())
    print(f"\nlowest {min(args.top, len(report.tensors))} tensors:")
    for t in report.tensors[: args.top]:
        print(f"  {t.sqnr_db:6.1f} dB  {t.tensor}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    store = _store(args)
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


def cmd_explore(args: argparse.Namespace) -> int:
    from core.data import load_dataset
    from core.precision import ExploreSettings, explore, explore_text, save_best
    from core.variants import check_recipe_name

    settings = ExploreSettings(
        flavour=Int8Flavour(args.flavour),
        target_drop=args.target_drop,
        target_speedup=args.target_speedup,
        search_split=args.search_split,
        drift_images=args.images,
        blocks=args.blocks,
        max_images=args.max_images,
    )
    if args.name:
        check_recipe_name(args.name)
    store = _store(args)
    if store.calib_dir is None:
        raise InputError("explore needs --calib DIR (calibration images; never the evaluation set)")
    if args.name and args.name in store.recipes.names():
        raise InputError(f"a recipe named {args.name!r} exists already (python -m core recipes --delete {args.name})")
    dataset = load_dataset(args.data)
    with TqdmProgress("explore") as bar:
        result = explore(store, dataset, settings, bar)
    if result.best is not None and not args.no_save:
        recipe = save_best(store, result, args.name)
        print(f"saved recipe {recipe.name!r}: run it as {result.best.variant}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(explore_text(result))
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from core.cluster import connect

    cluster = connect(args.cluster)
    with TqdmProgress("doctor on every node", enabled=not args.json) as bar:
        bar(0.1, "asking the nodes")
        nodes = cluster.doctor()
    if args.json:
        print(json.dumps({"address": cluster.address, "nodes": nodes}, indent=2))
        return 0
    print(f"cluster {cluster.address}: {len(nodes)} node(s)")
    print("  a variant runs on a node as NODE/runtime:precision, NODE as named first on its line")
    for n in nodes:
        head = ", head" if n["head"] else ""
        here = ", this process's node" if n["here"] else ""
        print(f"  {n['handle']} ({n['ip']}{head}{here}): {n['cpus']:g} CPUs, {n['memory_gb']} GB, {n['gpus']:g} GPUs")
        if n.get("error"):
            print(f"    cannot run this project's code there: {n['error']}")
        for r in n["runtimes"]:
            state = "yes" if r["available"] else f"no: {r['reason']}"
            print(f"    {r['runtime']:<11} {state}")
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    from core.model import recipe_rows

    store = _store(args)
    book = store.recipes
    if args.delete:
        book.delete(args.delete)
        print(f"deleted recipe {args.delete!r} of {store.source.name}", file=sys.stderr)
    rows = recipe_rows(store)
    if args.json:
        print(json.dumps({"model": store.source.name, "recipes": rows}, indent=2))
        return 0
    if not rows:
        print(f"{store.source.name}: no saved INT8 recipes (`python -m core explore` or the explorer page saves them)")
        return 0
    print(f"{store.source.name}: {len(rows)} INT8 recipe(s) in {book.folder}")
    for r in rows:
        built = "built" if r["built"] else "not built yet"
        print(f"  {r['variant']:<28} {r['describe']}  ({built})")
        if r["note"]:
            print(f"  {'':<28} {r['note']}")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from core.video import process_video

    variants = parse_variants(args.variants)
    params = _post_params(args)
    store = _store(args)
    detectors = [_open(store, v, args, in_turn=True) for v in variants]  # decode/encode threads share the cores
    try:
        with TqdmProgress(f"video {args.video.name}") as bar:
            run = process_video(args.video, detectors, params, args.output, args.max_frames, progress=bar)
    finally:
        for det in detectors:
            det.close()
    if args.csv:
        run.write_csv(args.csv)
    out = run.to_dict()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.video.name}: {run.frames} frames at {run.fps_processed:.1f} fps -> {run.output}")
        print(run.table().to_text())
        if run.damage:
            print(f"warning: {run.damage}", file=sys.stderr)
    for why in run.lost.values():
        print(f"warning: {why}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from core.report import load_results, render_html, sections_from_results, system_of

    results = load_results(args.results)
    html = render_html(args.title, sections_from_results(results), system_of(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(html, encoding="utf-8")
    kinds = ", ".join(kind for kind, _ in results)
    print(f"wrote {args.out} ({len(html) / 1e6:.1f} MB: {kinds})", file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from core.cli import doctor

    check = None
    if args.gpu_check:
        with TqdmProgress("GPU check", enabled=not args.json) as bar:
            check = doctor.gpu_check(lambda: _store(args), args.video, args.frames, bar)
    return doctor.show(check, as_json=args.json)


COMMANDS = {
    "detect": cmd_detect,
    "bench": cmd_bench,
    "eval": cmd_eval,
    "compare": cmd_compare,
    "convert": cmd_convert,
    "drift": cmd_drift,
    "explore": cmd_explore,
    "recipes": cmd_recipes,
    "cluster": cmd_cluster,
    "report": cmd_report,
    "video": cmd_video,
    "doctor": cmd_doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CoreError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: still one line unless --debug
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_PARTIAL
