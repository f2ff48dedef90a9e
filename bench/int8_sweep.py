"""INT8 (cpu flavour) settings against FP32: mAP50-95 and end-to-end p50 of each, in one run (issue: performance).

    .venv/bin/python bench/int8_sweep.py --model yolov5n --calib DIR --data DIR [--settings a,b] [--md FILE]

Each setting is a set of ``core.model.convert.Int8Options``; its INT8 file is built (cached in --cache-dir like
any artefact), evaluated on --data with val.py's protocol, then all settings and ``ort:fp32`` are timed
in interleaved rounds on the bus.jpg sample (``Detector.detect``, end to end: letterbox + inference +
decode + NMS), so every setting sees the same machine state. Prints a markdown table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import load_dataset, load_image, sample_image
from core.measure import LatencyStats, evaluate
from core.model import CalibrationMethod, Int8Options, open_store
from core.runtime import PostParams, system_info
from core.variants import Precision, Runtime, Variant

FP32 = Variant(Runtime.ORT, Precision.FP32)
INT8 = Variant(Runtime.ORT, Precision.INT8)
DEFAULT = Int8Options()
# What each lever means is in core.model.convert.Int8Options; "stem"/"head" = first conv / Detect convs in float.
NAIVE = replace(DEFAULT, keep_stem_float=False, keep_head_float=False, reduce_range=False, moving_average=False)


@dataclass(frozen=True)
class Setting:
    name: str
    what: str
    options: Int8Options


SETTINGS = [
    Setting("default", "moving-average minmax 128, stem+head float, 7-bit weights (the default)", DEFAULT),
    Setting("naive", "minmax 128, all convs int8, 8-bit weights", NAIVE),
    Setting("minmax", "default, but plain min/max (extremes over all images)", replace(DEFAULT, moving_average=False)),
    Setting("stem-int8", "default, but the first conv in int8", replace(DEFAULT, keep_stem_float=False)),
    Setting(
        "stem+head-int8",
        "default, but first conv and Detect convs in int8",
        replace(DEFAULT, keep_stem_float=False, keep_head_float=False),
    ),
    Setting("head-int8", "default, but the Detect convs in int8", replace(DEFAULT, keep_head_float=False)),
    Setting("silu-float", "default, SiLU (Sigmoid, Mul) in float", replace(DEFAULT, quantize_silu=False)),
    Setting("sppf-float", "default, SPPF (model.9) in float", replace(DEFAULT, float_nodes=("/model.9/",))),
    Setting(
        "percentile-32",
        "percentile 99.999 on 32 images",
        replace(DEFAULT, method=CalibrationMethod.PERCENTILE, max_images=32),
    ),
    Setting("entropy-32", "entropy on 32 images", replace(DEFAULT, method=CalibrationMethod.ENTROPY, max_images=32)),
    Setting("default-32", "default on 32 images", replace(DEFAULT, max_images=32)),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--settings", default=",".join(s.name for s in SETTINGS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=20)
    ap.add_argument("--no-timing", action="store_true", help="accuracy only")
    ap.add_argument("--out", type=Path, default=Path("artifacts/int8_sweep.json"))
    ap.add_argument("--md", type=Path, help="also write the markdown table here")
    args = ap.parse_args()

    wanted = [s.strip() for s in args.settings.split(",") if s.strip()]
    by_name = {s.name: s for s in SETTINGS}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; known: {', '.join(by_name)}")
    dataset = load_dataset(args.data)
    base = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    fp32 = base.open_detector(FP32)
    fp32_map = evaluate([fp32], dataset)[0].accuracy

    rows: dict[str, dict] = {}
    detectors = {"ort:fp32": fp32}
    for name in wanted:
        s = by_name[name]
        store = replace(base, int8=s.options)
        t = time.perf_counter()
        det = store.open_detector(INT8)
        ready = time.perf_counter() - t
        acc = evaluate([det], dataset)[0].accuracy
        rows[name] = {
            "setting": name,
            "what": s.what,
            "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(s.options).items()},
            "map50": round(acc.map50, 4),
            "map50_95": round(acc.map50_95, 4),
            "delta_points": round(100 * (acc.map50_95 - fp32_map.map50_95), 2),
            "build_or_load_s": round(ready, 1),
        }
        detectors[name] = det
        print(f"{name}: mAP50-95 {acc.map50_95:.4f} ({rows[name]['delta_points']:+.2f} points)", file=sys.stderr)

    timing: dict[str, dict] = {}
    load = os.getloadavg()[0]
    if not args.no_timing:
        image = load_image(sample_image("bus.jpg"))
        params = PostParams()
        samples: dict[str, list[float]] = {k: [] for k in detectors}
        for d in detectors.values():
            for _ in range(5):
                d.detect(image, params)
        for r in range(args.rounds):
            order = list(detectors.items())
            for key, d in order if r % 2 == 0 else order[::-1]:
                d.detect(image, params)  # untimed: wake this session's threads
                for _ in range(args.per_round):
                    samples[key].append(d.detect(image, params).timings.total)
        timing = {k: LatencyStats.from_samples(v).to_dict() for k, v in samples.items()}
        for name in rows:
            rows[name]["p50_ms"] = timing[name]["p50"]
            rows[name]["speedup_vs_fp32"] = round(timing["ort:fp32"]["p50"] / timing[name]["p50"], 3)

    result = {
        "system": system_info(),
        "model": base.source.name,
        "data": str(args.data),
        "calib": str(args.calib),
        "load_average_at_timing": round(load, 2),
        "fp32": {
            "map50": round(fp32_map.map50, 4),
            "map50_95": round(fp32_map.map50_95, 4),
            **timing.get("ort:fp32", {}),
        },
        "settings": list(rows.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    lines = [
        f"{result['system']['cpu']}, {result['system']['cores_logical']} cores; {result['model']} @ {base.input_size}; "
        f"mAP on {args.data.name}, p50 end to end on bus.jpg ({args.rounds} x {args.per_round} interleaved)",
        "",
        "| setting | what | mAP50 | mAP50-95 | Δ points | p50 ms | vs FP32 |",
        "|---|---|---|---|---|---|---|",
    ]
    fp32_p50 = timing.get("ort:fp32", {}).get("p50")
    lines.append(
        f"| ort:fp32 | FP32 | {fp32_map.map50:.4f} | {fp32_map.map50_95:.4f} | — "
        f"| {fp32_p50 if fp32_p50 is not None else '-'} | 1.00x |"
    )
    for row in rows.values():
        p50 = f"{row['p50_ms']:.2f}" if "p50_ms" in row else "-"
        ratio = f"{row['speedup_vs_fp32']:.2f}x" if "speedup_vs_fp32" in row else "-"
        lines.append(
            f"| {row['setting']} | {row['what']} | {row['map50']:.4f} | {row['map50_95']:.4f} "
            f"| {row['delta_points']:+.2f} | {p50} | {ratio} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.md:
        args.md.write_text(text + "\n")
    print(f"\nJSON: {args.out}")
    for d in detectors.values():
        d.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
