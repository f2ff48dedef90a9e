"""This project's CPU variants against the peers, end to end, in one run on the same images (issue: performance).

    .venv/bin/python bench/peers.py --model yolov5n --calib DIR --data DIR [--images 8] [--rounds 8]

Pipelines, all on the same decoded images, all with this project's letterbox (core.runtime.processing.preprocess)
and post-processing (conf 0.25, IoU 0.45, class-aware NMS, boxes back to the image):

* ``ort:fp32``, ``ort:fp16``, ``ort:int8``: this project's detectors (``Detector.detect``), default settings.
* ``torch:fp32``: the same checkpoint in PyTorch eager mode (``core.runtime.legacy_yolov5.load_legacy``; what the
  YOLOv5 tutorial runs), ``torch.inference_mode``, ``torch.set_num_threads`` = the ORT thread count.
* ``openvino:fp32``: OpenVINO's CPU plugin on the very FP32 ONNX file ``ort:fp32`` runs (the whole graph,
  decode included), latency hint, f32 inference precision, the same thread count.

Variants are interleaved: each round runs every pipeline over all images (one untimed call first, so a
pipeline's threads are awake when its timing starts); p50/p90 are over all rounds x images. Ratios are
``ort:fp32``'s p50 over the pipeline's p50 (> 1: faster than ort:fp32). Prints markdown, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import load_dataset, load_image, sample_images
from core.measure import LatencyStats
from core.model import open_store
from core.runtime import Detections, OutputLayout, PostParams, physical_cores, postprocess, preprocess, system_info
from core.variants import CPU_VARIANTS

Run = Callable[[np.ndarray], tuple[Detections, float]]  # image -> (detections, inference-only ms)


@dataclass
class Pipeline:
    name: str
    runs_on: str
    run: Run
    e2e: list[float] = field(default_factory=list)
    inference: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def _ours(det: Any, params: PostParams) -> Run:
    def run(image: np.ndarray) -> tuple[Detections, float]:
        r = det.detect(image, params)
        return r.detections, r.timings.inference

    return run


def _external(infer: Callable[[np.ndarray], np.ndarray], names: tuple[str, ...], hw: tuple[int, int]) -> Callable:
    """A peer runtime wrapped in the project's own pre- and post-processing."""

    def make(params: PostParams) -> Run:
        def run(image: np.ndarray) -> tuple[Detections, float]:
            tensor, lb = preprocess(image, hw)
            t = time.perf_counter()
            out = infer(tensor)
            ms = (time.perf_counter() - t) * 1e3
            return postprocess(out, OutputLayout.YOLOV5, lb, params, names), ms

        return run

    return make


def torch_pipeline(pt: Path, threads: int, names: tuple[str, ...], hw: tuple[int, int], params: PostParams) -> Pipeline:
    import torch

    from core.runtime import load_legacy

    torch.set_num_threads(threads)
    model = load_legacy(pt).model

    def infer(tensor: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out: np.ndarray = model(torch.from_numpy(tensor)).numpy()
        return out

    return Pipeline(
        "torch:fp32", f"PyTorch {torch.__version__} eager, {threads} threads", _external(infer, names, hw)(params)
    )


def openvino_pipeline(onnx: Path, threads: int, names: tuple[str, ...], hw: tuple[int, int], params: PostParams):
    import openvino as ov

    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = core.compile_model(str(onnx), "CPU", config)
    request = compiled.create_infer_request()
    output = compiled.outputs[0]

    def infer(tensor: np.ndarray) -> np.ndarray:
        out: np.ndarray = request.infer({0: tensor})[output]
        return out

    precision = compiled.get_property("INFERENCE_PRECISION_HINT")
    version = ov.__version__.split("-")[0]
    precision_name = precision.get_type_name() if hasattr(precision, "get_type_name") else str(precision)
    runs_on = f"OpenVINO {version} CPU, {threads} threads, latency hint, {precision_name} inference precision"
    return Pipeline("openvino:fp32", runs_on, _external(infer, names, hw)(params))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n", help="a legacy YOLOv5 .pt or an official name")
    ap.add_argument("--calib", type=Path, required=True, help="INT8 calibration images")
    ap.add_argument("--data", type=Path, required=True, help="a labelled set; its first --images images are used")
    ap.add_argument("--images", type=int, default=8, help="val images besides the samples (default 8)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="default: physical cores")
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--skip", default="", help="comma-separated pipelines to leave out (e.g. torch:fp32)")
    ap.add_argument("--out", type=Path, default=Path("artifacts/peers.json"))
    args = ap.parse_args()

    from core.runtime import BackendOptions

    threads = args.threads or physical_cores()
    params = PostParams()
    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    names, hw = store.info().names, store.input_hw
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    pipelines: list[Pipeline] = []
    detectors = []
    for v in CPU_VARIANTS:
        if str(v) in skip:
            continue
        det = store.open_detector(v, BackendOptions(threads=threads))
        detectors.append(det)
        pipelines.append(Pipeline(str(v), det.backend.description, _ours(det, params)))
    if "torch:fp32" not in skip:
        pipelines.append(torch_pipeline(store.source.path, threads, names, hw, params))
    if "openvino:fp32" not in skip:
        pipelines.append(openvino_pipeline(store.fp32(), threads, names, hw, params))

    paths = [p for p in sample_images() if p.name in ("bus.jpg", "zidane.jpg")]
    paths += [item.image for item in load_dataset(args.data, args.images).items]
    images = [load_image(p) for p in paths]
    for p in pipelines:  # first calls allocate and pick kernels
        for image in images[:3]:
            p.run(image)

    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        order = pipelines if r % 2 == 0 else pipelines[::-1]  # neither end of a round is always the same one
        for p in order:
            p.run(images[0])  # untimed: wakes this pipeline's threads after the previous one ran
            for image in images:
                t = time.perf_counter()
                dets, inf_ms = p.run(image)
                p.e2e.append((time.perf_counter() - t) * 1e3)
                p.inference.append(inf_ms)
                if r == 0:
                    p.counts.append(len(dets))
    load_after = os.getloadavg()[0]

    base = statistics.median(pipelines[0].e2e) if pipelines[0].name == "ort:fp32" else None
    rows = []
    for p in pipelines:
        e2e, inf = LatencyStats.from_samples(p.e2e), LatencyStats.from_samples(p.inference)
        rows.append(
            {
                "pipeline": p.name,
                "runs_on": p.runs_on,
                "p50_ms": round(e2e.p50, 2),
                "p90_ms": round(e2e.p90, 2),
                "inference_p50_ms": round(inf.p50, 2),
                "speedup_vs_ort_fp32": round(base / e2e.p50, 3) if base else None,
                "objects_first_round": sum(p.counts),
                "samples": e2e.count,
            }
        )
    result = {
        "system": system_info(),
        "model": store.source.name,
        "imgsz": store.input_size,
        "threads": threads,
        "images": [str(p) for p in paths],
        "rounds": args.rounds,
        "post": {"conf": params.conf, "iou": params.iou},
        "load_average_before_after": [round(load_before, 2), round(load_after, 2)],
        "pipelines": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    s = result["system"]
    print(f"{s['cpu']}, {s['cores_logical']} cores, {threads} threads; {store.source.name} @ {store.input_size}")
    print(f"{len(images)} images ({len(paths) - args.images} samples + {args.images} val) x {args.rounds} rounds, ")
    print(f"interleaved; load average before/after {load_before:.2f}/{load_after:.2f}\n")
    print("| pipeline | runs on | p50 ms | p90 ms | inference p50 ms | vs ort:fp32 | objects |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = f"{row['speedup_vs_ort_fp32']:.2f}x" if row["speedup_vs_ort_fp32"] else "-"
        print(
            f"| {row['pipeline']} | {row['runs_on']} | {row['p50_ms']:.2f} | {row['p90_ms']:.2f} "
            f"| {row['inference_p50_ms']:.2f} | {ratio} | {row['objects_first_round']} |"
        )
    print("\nend to end per image: letterbox + inference + NMS (conf 0.25, IoU 0.45) on a decoded image")
    print(f"JSON: {args.out}")
    for det in detectors:
        det.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
