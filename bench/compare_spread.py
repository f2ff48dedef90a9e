"""How repeatable Compare images' latencies are now (issue: numbers a team can decide on).

    .venv/bin/python bench/compare_spread.py --model yolov5n --calib DIR [--repeats 5]

Runs the Compare images comparison (core.measure.compare, the page's and `compare`'s engine: an untimed call, then 5
timed rounds per image with the variants in turn) ``--repeats`` times from scratch on the two sample
images with ort:fp32 and ort:int8, and prints each repeat's medians, their run-to-run spread (max - min, in
% of the mean) and the speed-up each repeat reports: the spread should be small next to the difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import sample_images
from core.measure import ImageComparison, read_images
from core.model import open_store
from core.runtime import BackendOptions, PostParams
from core.variants import Variant


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    fp32, int8 = Variant.parse("ort:fp32"), Variant.parse("ort:int8")
    dets = [store.open_detector(v, BackendOptions.for_turns(True)) for v in (fp32, int8)]
    for d in dets:
        d.warmup(2)  # as the dashboard's pool does when it loads a detector
    images = read_images([(p.name, p.read_bytes()) for p in sample_images()[:2]]).images
    medians: dict[tuple[str, str], list[float]] = {}
    speedups: list[str] = []
    for r in range(args.repeats):
        result = ImageComparison(dets, fp32).result(images, PostParams())  # a fresh cache: everything re-timed
        for im in result.images:
            for v in im.variants:
                medians.setdefault((im.name, v.variant), []).append(v.latency.p50)
        speedups.append(result.headline("ort:int8").split(" — ")[1].split(" on ")[0])
        print(f"repeat {r + 1}: " + ", ".join(f"{k[0]} {k[1]} {m[-1]:.2f} ms" for k, m in medians.items()))
    print("\n| image | variant | medians of the repeats (ms) | run-to-run spread |")
    print("|---|---|---|---|")
    for (image, variant), m in medians.items():
        spread = 100 * (max(m) - min(m)) / float(np.mean(m))
        print(f"| {image} | {variant} | {', '.join(f'{x:.2f}' for x in m)} | {spread:.1f} % |")
    print("\nort:int8 vs ort:fp32, as each repeat reports it:")
    for i, s in enumerate(speedups, 1):
        print(f"  {i}: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
