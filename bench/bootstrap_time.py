"""How long the accuracy interval takes (issue: numbers a team can decide on; bar: under 10 s for 128 images).

    .venv/bin/python bench/bootstrap_time.py --model yolov5n --calib DIR --data DIR [--resamples 1000]

Runs ort:fp32 and ort:int8 over the labelled set once (not timed), then times the 95 % paired bootstrap of
ΔmAP (core.measure.bootstrap, the matches reused, seeded) and checks that unit weights reproduce ultralytics' mAP.
Prints the figures and exits 1 if the bar is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import load_dataset, load_image
from core.measure import MapAccumulator, paired_delta, weighted_map
from core.model import open_store
from core.runtime import EVAL_PARAMS
from core.variants import Variant

BAR_SECONDS = 10.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    dataset = load_dataset(args.data)
    accs = {}
    for name in ("ort:fp32", "ort:int8"):
        with store.open_detector(Variant.parse(name)) as det:
            acc = MapAccumulator()
            for item in dataset.items:
                image = load_image(item.image)
                acc.add(det.detect(image, EVAL_PARAMS).detections, item.labels, image.shape[1], image.shape[0])
            accs[name] = acc
    names = store.info().names
    ref, var = (accs[v].result(names) for v in ("ort:fp32", "ort:int8"))
    for name, acc in accs.items():
        _, m95 = weighted_map(acc.matches(), np.ones((1, acc.images)))
        ultra = acc.result(names)
        print(f"{name}: mAP50-95 {ultra.map50_95:.5f} (ultralytics) vs {m95[0]:.5f} (unit weights)")
    t = time.perf_counter()
    delta = paired_delta(
        accs["ort:fp32"].matches(),
        accs["ort:int8"].matches(),
        (var.map50_95 - ref.map50_95, var.map50 - ref.map50),
        args.resamples,
    )
    seconds = time.perf_counter() - t
    print(f"{dataset.inventory.images} images, {delta.boxes} boxes, {args.resamples} resamples: {seconds:.1f} s")
    print(f"ort:int8 vs ort:fp32: ΔmAP50-95 {delta.map50_95.words()}, ΔmAP50 {delta.map50.words()}")
    ok = seconds < BAR_SECONDS
    print(f"bar: under {BAR_SECONDS:.0f} s — {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
