"""mAP of the rect input shape against square, per variant, paired on the same images (issue: input shape).

    .venv/bin/python bench/shape_accuracy.py [--data VAL] [--calib DIR] [--variants ort:fp32,ort:int8] [--out FILE]

Each image of the labelled set runs through every variant twice, square (640x640) and rect (long side 640, the
other padded to a multiple of 32), in turn (``core.measure.collect``, val.py's thresholds: conf 0.001, IoU 0.6).
Per variant: mAP50-95 of both, rect minus square with its paired 95 % bootstrap interval over images, and the
median end-to-end ms per image of both (letterbox + inference + NMS; the set's own aspect ratios, so this is what
rect saves on COCO-like photos, not on 16:9 video). Bar: |Δ| <= 0.5 points for ort:fp32. Prints markdown, writes
JSON with --out; exits 1 if the bar is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data import load_dataset, load_image  # noqa: E402
from core.measure import collect, paired_delta  # noqa: E402
from core.model import open_store  # noqa: E402
from core.runtime import (  # noqa: E402
    EVAL_PARAMS,
    BackendOptions,
    machine_line,
    system_info,
)
from core.variants import REFERENCE, Shape, parse_variants  # noqa: E402

BAR_POINTS = 0.5


def main() -> int:
    shared = ROOT.parent / "shared"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--data", type=Path, default=shared / "datasets" / "coco-val128")
    ap.add_argument("--calib", type=Path, default=shared / "datasets" / "coco128")
    ap.add_argument("--variants", default="ort:fp32")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    square = open_store(args.model, calib_dir=args.calib)
    rect = replace(square, shape=Shape.RECT)
    variants = parse_variants(args.variants)
    turns = BackendOptions.for_turns(True)  # detectors take turns image by image: idle sessions must not spin
    detectors = [s.open_detector(v, turns) for v in variants for s in (square, rect)]
    dataset = load_dataset(args.data)
    got = collect(detectors, dataset.items, EVAL_PARAMS, with_shown=False)[0]
    shapes = Counter(detectors[1].hw_for(load_image(item.image).shape[:2]) for item in dataset.items)
    rows = []
    for k, v in enumerate(variants):
        sq, rc = got[2 * k], got[2 * k + 1]
        m_sq, m_rc = sq.maps.result(sq.names), rc.maps.result(rc.names)
        reported = (m_rc.map50_95 - m_sq.map50_95, m_rc.map50 - m_sq.map50)
        d = paired_delta(sq.maps.matches(), rc.maps.matches(), reported).map50_95
        rows.append({
            "variant": str(v),
            "map50_95_square": round(m_sq.map50_95 * 100, 2),
            "map50_95_rect": round(m_rc.map50_95 * 100, 2),
            "delta_points": round(d.value, 2),
            "ci95": [round(d.lo, 2), round(d.hi, 2)],
            "p50_ms_square": round(statistics.median(sq.latency), 1),
            "p50_ms_rect": round(statistics.median(rc.latency), 1),
        })  # fmt: skip
    for d in detectors:
        d.close()
    doc = {
        "machine": machine_line(system_info()),
        "data": args.data.name,
        "images": len(dataset.items),
        "rect_inputs": {f"{w}x{h}": n for (h, w), n in shapes.most_common()},
        "rows": rows,
        "bar_points": BAR_POINTS,
    }
    print(f"{doc['machine']}; {doc['images']} images of {doc['data']}; rect inputs: "
          + ", ".join(f"{k} ({n})" for k, n in doc["rect_inputs"].items()) + "\n")  # fmt: skip
    print("| variant | mAP50-95 square | mAP50-95 rect | rect − square (95 % CI) | p50 ms square | p50 ms rect |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        delta = f"{r['delta_points']:+.2f} ({r['ci95'][0]:+.2f} to {r['ci95'][1]:+.2f})"
        print(f"| {r['variant']} | {r['map50_95_square']:.2f} | {r['map50_95_rect']:.2f} | {delta} | "
              f"{r['p50_ms_square']} | {r['p50_ms_rect']} |")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    ref = next((r for r in rows if r["variant"] == str(REFERENCE)), None)
    return 0 if ref is None or abs(ref["delta_points"]) <= BAR_POINTS else 1


if __name__ == "__main__":
    sys.exit(main())
