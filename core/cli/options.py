"""What the commands share: argument groups, range-checked argument types, the model store, the detectors.

A command declares the groups it takes (``GROUPS = (options.model(), options.post, options.output)``);
ranges are checked once, by the argparse types here, so every command refuses ``--runs 0`` the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from core import config
from core.errors import CoreError, InputError, Setting
from core.model import CalibrationMethod, Int8Options, ModelStore, open_store
from core.progress import TqdmProgress
from core.runtime import BackendOptions, Detector, PostParams
from core.variants import Shape, Variant

Group = Callable[[argparse.ArgumentParser], None]

# What a remedy is called on the command line (the engine names the setting, core.errors.Setting).
FLAGS = {
    Setting.CALIBRATION: "pass --calib DIR (a folder of images, e.g. a few hundred from your training set; "
    "never the evaluation set)",
    Setting.TRUST: "pass --trust to load it",
    Setting.CLUSTER: f"pass --cluster HOST:PORT (or auto), or set ${config.ENV_CLUSTER}",
    Setting.IMGSZ: "drop --imgsz",
    Setting.SHAPE: "use --shape square",
    Setting.MODELS_DIR: f"--models-dir or ${config.ENV_MODELS_DIR}",
    Setting.INT8_FLAVOUR: "python -m core convert --to int8 --flavour trt",
    Setting.TARGET: "--target-drop P or --target-speedup S",
}


def error_line(exc: CoreError) -> str:
    """The engine's words, then the flag that remedies it."""
    return f"{exc}: {FLAGS[exc.setting]}" if exc.setting in FLAGS else str(exc)


# ---------------------------------------------------------------------------------------------
# argument types: each range written once


def at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def between(low: float, high: float, *, open_low: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects a number, got {text!r}") from None
        if not (low < value if open_low else low <= value) or value > high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    parse.__name__ = f"number in {low:g}..{high:g}"
    return parse


positive = between(0.0, float("inf"), open_low=True)
fraction = between(0.0, 1.0)


def report_error(message: str, exit_code: int, as_json: bool) -> int:
    """One line ``error: MESSAGE`` on stderr; with ``--json`` also ``{"kind": "error", ...}`` on stdout, so a
    script reading stdout gets JSON whether the command worked or not. Returns ``exit_code``."""
    if as_json:
        print(json.dumps({"kind": "error", "error": message, "exit_code": exit_code}, indent=2))
    print(f"error: {message}", file=sys.stderr)
    return exit_code


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other error of the CLI (and JSON on stdout when
    ``--json`` is on the command line: ``json_errors``, set by ``core.cli.main`` for the parse)."""

    json_errors = False

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.exit(report_error(f"{self.prog}: {message} (--help lists the options)", 2, Parser.json_errors))


# ---------------------------------------------------------------------------------------------
# argument groups


def model(default: str | None = "yolov5n") -> Group:
    """--model and what opens it: image size, trust, names, cache, calibration, threads, cluster."""

    def add(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("model")
        what = "a .pt / .onnx path, or an official name (yolov5n..x)"
        if default is None:
            g.add_argument("--model", "-m", required=True, help=what)
        else:
            g.add_argument("--model", "-m", default=default, help=f"{what}; default {default}")
        g.add_argument("--imgsz", type=int, default=None, help="network input size (default: the model's, else 640)")
        g.add_argument("--shape", choices=[s.value for s in Shape], default=Shape.SQUARE.value,
                       help="network input shape: square (every image 640x640, default) or rect (long side 640, the "
                       "other padded only to a multiple of 32, as YOLOv5's detect.py; 16:9 runs 640x384)")  # fmt: skip
        g.add_argument("--trust", action="store_true", help="allow unpickling an ultralytics .pt (runs code from it)")
        g.add_argument("--names", type=Path, help="class names file for an .onnx without names metadata")
        g.add_argument("--cache-dir", type=Path, help=f"artefact cache (default ${config.ENV_CACHE_DIR} or ~/.cache)")
        g.add_argument("--models-dir", type=Path, help=f"official checkpoints (default ${config.ENV_MODELS_DIR})")
        g.add_argument("--calib", type=Path, help="folder of calibration images (needed to build INT8)")
        g.add_argument("--calib-method", choices=[m.value for m in CalibrationMethod], help="INT8 calibration method")
        g.add_argument("--calib-images", type=at_least(1), help="use at most this many calibration images")
        g.add_argument("--weight-bits", type=int, choices=(7, 8), default=None,
                       help="INT8 cpu-flavour weight bits (default: 8 with VNNI, else 7)")  # fmt: skip
        g.add_argument("--threads", type=int, default=None, help="CPU inference threads (default: physical cores)")
        g.add_argument("--cluster", default=None, metavar="ADDRESS",
                       help="a Ray cluster (HOST:PORT, or auto) for variants placed on nodes: NODE/ort:fp32 "
                       f"(default ${config.ENV_CLUSTER})")  # fmt: skip

    return add


def post(p: argparse.ArgumentParser) -> None:
    """Post-processing: confidence, NMS IoU, detections kept, classes."""
    p.add_argument("--conf", type=fraction, default=0.25, help="confidence threshold (default 0.25)")
    p.add_argument("--iou", type=fraction, default=0.45, help="NMS IoU threshold (default 0.45)")
    p.add_argument("--max-det", type=at_least(1), default=300, help="maximum detections per image")
    p.add_argument("--classes", type=str, default=None, help="keep only these class ids, e.g. 0,2,5")


def output(p: argparse.ArgumentParser) -> None:
    """--json: the result as JSON on stdout and nothing else (progress and notes go to stderr)."""
    p.add_argument("--json", action="store_true", help="print the result as JSON (with its kind)")


def cluster(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help=f"HOST:PORT or auto (default ${config.ENV_CLUSTER})")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# what the commands open


def store(args: argparse.Namespace) -> ModelStore:
    int8 = Int8Options()
    if args.calib_method:
        int8 = replace(int8, method=CalibrationMethod(args.calib_method))
    if args.calib_images:
        int8 = replace(int8, max_images=args.calib_images)
    if getattr(args, "weight_bits", None):
        int8 = replace(int8, reduce_range=args.weight_bits == 7)
    join_cluster(getattr(args, "cluster", None))
    with TqdmProgress("model") as bar:
        return open_store(
            args.model,
            cache_dir=args.cache_dir,
            models_dir=args.models_dir,
            trust=args.trust,
            names=args.names,
            imgsz=args.imgsz,
            shape=Shape(getattr(args, "shape", Shape.SQUARE.value)),
            calib_dir=args.calib,
            int8=int8,
            progress=bar,
        )


def join_cluster(address: str | None) -> None:
    """Connect when asked; an address that does not answer is one line, and the local variants still run."""
    if not (address or os.environ.get(config.ENV_CLUSTER)):
        return
    from core.cluster import connect

    try:
        connect(address)
    except CoreError as exc:
        print(f"warning: {error_line(exc)}; variants in this process run as usual", file=sys.stderr)


def post_params(args: argparse.Namespace) -> PostParams:
    classes = None
    if args.classes:
        try:
            classes = tuple(int(c) for c in args.classes.split(",") if c.strip())
        except ValueError:
            raise InputError(f"--classes expects comma-separated class ids, got {args.classes!r}") from None
    return PostParams(conf=args.conf, iou=args.iou, max_det=args.max_det, classes=classes)


_NOTED: set[str] = set()


def open_detector(store: ModelStore, variant: Variant, args: argparse.Namespace, in_turn: bool = False) -> Detector:
    """``in_turn``: several variants will alternate frame by frame, so CPU threads must not spin idle."""
    note = store.calibration_note
    if note and variant.spec.artefact.int8_flavour is not None and note not in _NOTED:
        _NOTED.add(note)
        print(f"note: {note} (--calib DIR)", file=sys.stderr)
    with TqdmProgress(f"prepare {variant}") as bar:
        return store.open_detector(variant, BackendOptions.for_turns(in_turn, args.threads), progress=bar)


def transfer(det: Detector) -> dict[str, Any]:
    """A variant on a cluster node: the object-store and call overhead per call, apart from its latency."""
    from core.measure import transfer_stats

    if det.node is None or not det.transfer_ms:
        return {}
    return {"transfer_ms": transfer_stats(det.transfer_ms), "node": det.node.to_dict()}
