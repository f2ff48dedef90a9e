"""Every CPU variant this machine can run, end to end, with its accuracy, in one interleaved run (issue 21).

    .venv/bin/python bench/cpu_variants.py [--data VAL] [--calib DIR] [--images 20] [--rounds 8] [--out FILE.json]

Variants: the table's CPU rows this CPU can run (ONNX Runtime, OpenVINO, PyTorch; FP32 / FP16 / BF16 / INT8; a
BF16 row is left out, with its reason, on a CPU without native BF16), plus ``ort:int8`` with the other INT8 weight
range than this CPU's default (7-bit where VNNI makes 8-bit the default, and the reverse), so the README can say
what the weight range costs on this CPU.

* **Latency**: ``Detector.detect`` (letterbox, inference, decode, NMS at conf 0.25) timed around the whole call,
  ``--rounds`` rounds over ``--images`` images of the set, every variant once per image in turn (interleaved, so
  all share the machine's noise), after one untimed call each. p50 and p10-p90 over all rounds x images; the ratio
  is ``ort:fp32``'s p50 over the variant's.
* **Accuracy**: mAP50-95 on the whole labelled set (val.py's thresholds: conf 0.001, IoU 0.6), each image run
  through every variant in turn; the difference to ``ort:fp32`` with its paired 95 % bootstrap interval.

Prints the CPU, its instruction sets, a markdown table, and JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data import load_dataset, load_image  # noqa: E402
from core.measure import collect, paired_delta  # noqa: E402
from core.model import Int8Options, open_store  # noqa: E402
from core.runtime import EVAL_PARAMS, BackendOptions, PostParams, availability, cpu_features, system_info  # noqa: E402
from core.variants import CPU_VARIANTS, REFERENCE, Precision, Variant  # noqa: E402


def main() -> None:
    shared = ROOT.parent / "shared"
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--data", type=Path, default=shared / "datasets" / "coco-val128")
    ap.add_argument("--calib", type=Path, default=shared / "datasets" / "coco128")
    ap.add_argument("--images", type=int, default=20, help="images timed per round")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    bits = 7 if store.int8.reduce_range else 8
    other = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib,
                       int8=Int8Options(reduce_range=bits == 8))  # fmt: skip
    # variants take turns call by call: ONNX Runtime's idle sessions must not spin on the cores the busy one needs
    turns = BackendOptions.for_turns(True)
    labels: list[str] = []
    detectors = []
    left_out: dict[str, str] = {}
    for v in CPU_VARIANTS:
        status = availability(v.runtime, v.precision)
        if not status:
            left_out[str(v)] = status.reason
            continue
        labels.append(f"{v} ({bits}-bit weights)" if v.precision is Precision.INT8 else str(v))
        detectors.append(store.open_detector(v, turns))
    labels.append(f"ort:int8 ({15 - bits}-bit weights)")
    detectors.append(other.open_detector(Variant.parse("ort:int8"), turns))
    print(f"{len(detectors)} pipelines: {', '.join(labels)}", file=sys.stderr)

    dataset = load_dataset(args.data)
    # latency: interleaved rounds over the first --images images
    images = [load_image(item.image) for item in dataset.items[: args.images]]
    params = PostParams()
    for det in detectors:
        det.detect(images[0], params)
    times: list[list[float]] = [[] for _ in detectors]
    for _ in range(args.rounds):
        for image in images:
            for k, det in enumerate(detectors):
                t0 = time.perf_counter()
                det.detect(image, params)
                times[k].append((time.perf_counter() - t0) * 1000)
    # accuracy: the whole set, each image through every variant in turn
    got = collect(detectors, dataset.items, EVAL_PARAMS, with_shown=False)[0]
    maps = [c.maps.result(c.names) for c in got]
    ref = labels.index(str(REFERENCE))
    ref_p50 = statistics.median(times[ref])

    rows = []
    for k, label in enumerate(labels):
        p10, p50, p90 = (statistics.quantiles(times[k], n=10)[0], statistics.median(times[k]),
                         statistics.quantiles(times[k], n=10)[-1])  # fmt: skip
        row = {
            "variant": label,
            "runs_on": detectors[k].backend.description,
            "p50_ms": round(p50, 1),
            "p10_ms": round(p10, 1),
            "p90_ms": round(p90, 1),
            "vs_ort_fp32": round(ref_p50 / p50, 2),
            "map50_95": round(maps[k].map50_95 * 100, 2),
        }
        if k != ref:
            reported = (maps[k].map50_95 - maps[ref].map50_95, maps[k].map50 - maps[ref].map50)
            d = paired_delta(got[ref].maps.matches(), got[k].maps.matches(), reported).map50_95
            row["delta_points"], row["ci95"] = round(d.value, 2), [round(d.lo, 2), round(d.hi, 2)]
        rows.append(row)
    # the two weight ranges of ort:int8, paired: what the range alone changes
    a, b = labels.index(f"ort:int8 ({bits}-bit weights)"), len(labels) - 1
    seven, eight = (b, a) if bits == 8 else (a, b)
    reported = (maps[eight].map50_95 - maps[seven].map50_95, maps[eight].map50 - maps[seven].map50)
    d = paired_delta(got[seven].maps.matches(), got[eight].maps.matches(), reported).map50_95
    ratio = statistics.median(times[seven]) / statistics.median(times[eight])
    eight_minus_seven = {"points": round(d.value, 2), "ci95": [round(d.lo, 2), round(d.hi, 2)],
                         "p50_ratio_7_over_8": round(ratio, 2)}  # fmt: skip
    info = system_info()
    out = {
        "cpu": info["cpu"],
        "cpu_features": cpu_features().names,
        "cpu_summary": cpu_features().summary(),
        "cores_physical": info["cores_physical"],
        "versions": info["versions"],
        "int8_default_weight_bits": bits,
        "timed": {"images": len(images), "rounds": args.rounds},
        "accuracy_images": len(dataset.items),
        "left_out": left_out,
        "ort_int8_8bit_minus_7bit": eight_minus_seven,
        "rows": rows,
    }
    print(f"CPU: {out['cpu']} ({out['cores_physical']} cores; {out['cpu_summary']}: {' '.join(out['cpu_features'])})")
    print(f"{len(images)} images x {args.rounds} rounds timed, interleaved; mAP on {len(dataset.items)} images\n")
    print("| variant | p50 ms (p10-p90) | vs ort:fp32 | mAP50-95 | Δ vs ort:fp32 (95 % CI) |")
    print("|---|---|---|---|---|")
    for r in rows:
        delta = f"{r['delta_points']:+.2f} ({r['ci95'][0]:+.2f} to {r['ci95'][1]:+.2f})" if "ci95" in r else "—"
        print(f"| {r['variant']} | {r['p50_ms']} ({r['p10_ms']}-{r['p90_ms']}) | {r['vs_ort_fp32']:.2f}x | "
              f"{r['map50_95']:.2f} | {delta} |")  # fmt: skip
    e = eight_minus_seven
    print(f"\nort:int8, 8-bit minus 7-bit weights: {e['points']:+.2f} mAP50-95 points "
          f"({e['ci95'][0]:+.2f} to {e['ci95'][1]:+.2f}); "
          f"7-bit p50 / 8-bit p50 = {e['p50_ratio_7_over_8']:.2f}")  # fmt: skip
    for v, why in left_out.items():
        print(f"\n{v} left out: {why}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    for det in detectors:
        det.close()


if __name__ == "__main__":
    main()
