"""What INT8 calibrated on the bundled pictures (no calibration folder set) costs against a real calibration set.

Two INT8 files of the same model, one calibrated on the app's bundled pictures (the default with no folder), one on
coco128 (a proper calibration set); FP32 as the reference; all three on coco-val128, each image run through the
three in turn. Prints each INT8 file's ΔmAP50-95 vs FP32 with its paired 95 % interval, and the paired difference
between the two INT8 files (bundled minus coco128) with its interval.

    .venv/bin/python bench/bundled_calibration.py [--data VAL] [--calib CALIB_IMAGES]   (defaults: ../shared)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data import load_dataset  # noqa: E402
from core.measure import collect, paired_delta  # noqa: E402
from core.model import open_store  # noqa: E402
from core.runtime import EVAL_PARAMS, system_info  # noqa: E402
from core.variants import REFERENCE, Variant  # noqa: E402


def main() -> None:
    shared = ROOT.parent / "shared"
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--data", type=Path, default=shared / "datasets" / "coco-val128")
    ap.add_argument("--calib", type=Path, default=shared / "datasets" / "coco128" / "images")
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    bundled = open_store(args.model, cache_dir=args.cache_dir)  # no folder: the bundled pictures
    real = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    int8 = Variant.parse("ort:int8")
    detectors = [real.open_detector(REFERENCE), bundled.open_detector(int8), real.open_detector(int8)]
    dataset = load_dataset(args.data)
    fp32, on_bundled, on_real = collect(detectors, dataset.items, EVAL_PARAMS, with_shown=False)[0]
    maps = {id(c): c.maps.result(c.names) for c in (fp32, on_bundled, on_real)}

    def delta(a, b):  # b - a, paired over images
        reported = (maps[id(b)].map50_95 - maps[id(a)].map50_95, maps[id(b)].map50 - maps[id(a)].map50)
        d = paired_delta(a.maps.matches(), b.maps.matches(), reported).map50_95
        return {"points": round(d.value, 2), "ci95": [round(d.lo, 2), round(d.hi, 2)]}

    names = {"fp32": fp32, "int8_bundled": on_bundled, "int8_coco128": on_real}
    out = {
        "cpu": system_info()["cpu"],
        "images": len(dataset.items),
        "bundled_calibration": bundled.calibration_note,
        "map50_95": {k: round(maps[id(c)].map50_95, 4) for k, c in names.items()},
        "int8_bundled_vs_fp32": delta(fp32, on_bundled),
        "int8_coco128_vs_fp32": delta(fp32, on_real),
        "int8_bundled_minus_int8_coco128": delta(on_real, on_bundled),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
