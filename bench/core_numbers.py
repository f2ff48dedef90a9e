"""The core engine's numbers, measured in one run (issue: core engine).

    .venv/bin/python bench/core_numbers.py --model yolov5n --calib DIR --data DIR [--out artifacts/core.json]

1. bus.jpg with ort:fp32 at 640 against the official YOLOv5 detections (classes, boxes within 3 px, conf within 0.01)
2. mAP50 / mAP50-95 of ort:fp32, ort:fp16, ort:int8 on the labelled set (INT8 calibrated on --calib)
3. p50 latency of the three variants in the same run, interleaved in rounds so all see the same machine state
4. end-to-end (letterbox + inference + NMS) p50 vs inference-only p50 for ort:fp32

Prints a markdown table and writes JSON; exits 1 if a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import load_dataset, load_image, sample_image
from core.measure import LatencyStats, evaluate
from core.model import open_store
from core.runtime import PostParams, system_info
from core.variants import CPU_VARIANTS

OFFICIAL_BUS = [
    ("person", 0.814, [50, 399, 206, 898]),
    ("person", 0.791, [220, 408, 349, 864]),
    ("person", 0.608, [680, 379, 810, 873]),
    ("bus", 0.508, [51, 235, 810, 781]),
]


def check_bus(det, image) -> dict:
    d = det.detect(image, PostParams(conf=0.25, iou=0.45)).detections
    got = sorted(zip(d.class_names, d.confidence.tolist(), d.xyxy.tolist(), strict=True), key=lambda r: -r[1])
    ok = len(got) == len(OFFICIAL_BUS)
    max_px = max_dconf = 0.0
    for (gc, gs, gb), (wc, ws, wb) in zip(got, OFFICIAL_BUS, strict=False):
        ok &= gc == wc
        max_px = max(max_px, float(np.abs(np.array(gb) - wb).max()))
        max_dconf = max(max_dconf, abs(gs - ws))
    ok &= max_px <= 3 and max_dconf <= 0.01
    return {
        "pass": bool(ok),
        "detections": len(got),
        "max_box_error_px": round(max_px, 2),
        "max_conf_error": round(max_dconf, 4),
    }


def interleaved_latency(detectors, image, rounds: int, per_round: int) -> dict:
    total: dict[str, list[float]] = {str(d.variant): [] for d in detectors}
    infer: dict[str, list[float]] = {str(d.variant): [] for d in detectors}
    params = PostParams()
    for d in detectors:
        for _ in range(10):
            d.detect(image, params)
    for _ in range(rounds):
        for d in detectors:
            for _ in range(per_round):
                t = d.detect(image, params).timings
                total[str(d.variant)].append(t.total)
                infer[str(d.variant)].append(t.inference)
    return {
        v: {
            "e2e": LatencyStats.from_samples(total[v]).to_dict(),
            "inference": LatencyStats.from_samples(infer[v]).to_dict(),
        }
        for v in total
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("artifacts/core_numbers.json"))
    args = ap.parse_args()

    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    detectors = [store.open_detector(v) for v in CPU_VARIANTS]
    by_name = {str(d.variant): d for d in detectors}
    image = load_image(sample_image("bus.jpg"))

    bus = check_bus(by_name["ort:fp32"], image)
    lat = interleaved_latency(detectors, image, args.rounds, args.per_round)
    evals = {r.variant: r for r in evaluate(detectors, load_dataset(args.data), reference=by_name["ort:fp32"])}

    fp32_map = evals["ort:fp32"].accuracy.map50_95
    fp32_p50 = lat["ort:fp32"]["e2e"]["p50"]
    rows = []
    for v in by_name:
        acc = evals[v].accuracy
        rows.append(
            {
                "variant": v,
                "map50": round(acc.map50, 4),
                "map50_95": round(acc.map50_95, 4),
                "delta_points": round(100 * (acc.map50_95 - fp32_map), 2),
                "p50_ms": lat[v]["e2e"]["p50"],
                "p90_ms": lat[v]["e2e"]["p90"],
                "inference_p50_ms": lat[v]["inference"]["p50"],
                "speedup_vs_fp32": round(fp32_p50 / lat[v]["e2e"]["p50"], 3),
            }
        )
    r = {row["variant"]: row for row in rows}
    e2e_ratio = round(lat["ort:fp32"]["e2e"]["p50"] / lat["ort:fp32"]["inference"]["p50"], 3)
    bars: dict[str, bool] = {
        "bus.jpg matches official YOLOv5": bus["pass"],
        "fp16 mAP50-95 within 0.3 points": abs(r["ort:fp16"]["delta_points"]) <= 0.3,
        "int8 mAP50-95 within 1.5 points": -r["ort:int8"]["delta_points"] <= 1.5,
        "int8 p50 >= 1.4x faster than fp32": r["ort:int8"]["speedup_vs_fp32"] >= 1.4,
        "fp32 end-to-end p50 <= 1.15x inference p50": e2e_ratio <= 1.15,
    }
    out = {
        "system": system_info(),
        "model": store.source.name,
        "imgsz": store.input_size,
        "bus": bus,
        "variants": rows,
        "fp32_e2e_over_inference": e2e_ratio,
        "bars": bars,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))

    sysinfo = out["system"]
    print(f"{sysinfo['cpu']}, {sysinfo['cores_logical']} cores; {store.source.name} @ {store.input_size}\n")
    print("| variant | mAP50 | mAP50-95 | Δ points | p50 ms | p90 ms | inference p50 ms | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['map50']:.4f} | {row['map50_95']:.4f} | {row['delta_points']:+.2f} "
            f"| {row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['inference_p50_ms']:.2f} "
            f"| {row['speedup_vs_fp32']:.2f}x |"
        )
    print(f"\nbus.jpg: {bus}\nfp32 end-to-end / inference p50: {e2e_ratio}\n")
    for name, ok in bars.items():
        print(f"- [{'x' if ok else ' '}] {name}")
    print(f"\nJSON: {args.out}")
    for d in detectors:
        d.close()
    return 0 if all(bars.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
