"""Does fidelity (agreement with FP32 on unlabelled images) predict labelled accuracy? (issue: explorer statistics)

    .venv/bin/python bench/fidelity_signal.py [--calib DIR] [--data VAL] [--video CLIP] [--count 500] [--out FILE]

Candidates: the INT8 recipes the explorer tries (the default; the calibration settings; per-tensor weights, the
other weight range, stem and Detect convs in INT8; every block that computes kept in float, one at a time). For each:

* **labelled**: mAP50-95 on the whole labelled set minus FP32's, with its 95 % paired bootstrap interval;
* **fidelity** (core.precision.fidelity): soft F1 against FP32's detections at conf 0.25 on ``--count`` frames of
  ``--video`` (no labels), minus FP32's 100, with its paired interval;
* **pseudo-label mAP**: the alternative signal, mAP50-95 of the candidate at val.py's thresholds scored against
  FP32's conf-0.25 detections as ground truth, on the same frames, minus FP32's own.

Prints the rank correlation (Spearman) of each signal with the labelled difference across candidates, the median
interval width of each, and the time per candidate; writes JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.data import load_dataset, load_image  # noqa: E402
from core.measure import MapAccumulator, paired_delta  # noqa: E402
from core.model import open_store  # noqa: E402
from core.precision import CALIBRATIONS  # noqa: E402
from core.precision.fidelity import FidelitySet, fidelity_images, versus  # noqa: E402
from core.runtime import (  # noqa: E402
    EVAL_PARAMS,
    BackendOptions,
    machine_line,
    system_info,
)
from core.variants import REFERENCE, Artefact, Precision, Runtime, Variant  # noqa: E402

DATA_MOVERS = {11, 12, 15, 16, 19, 22}  # yolov5n: Upsample and Concat blocks (same numbers in float)


def labelled(det, items, images) -> MapAccumulator:
    acc = MapAccumulator()
    for item, image in zip(items, images, strict=True):
        dets, _ = det.postprocess(det.infer_raw(image, EVAL_PARAMS.conf), EVAL_PARAMS)
        h, w = image.shape[:2]
        acc.add(dets, item.labels, w, h)
    return acc


def pseudo(det, fid: FidelitySet) -> MapAccumulator:
    """The candidate at val.py's thresholds against FP32's conf-0.25 detections as labels."""
    acc = MapAccumulator()
    for image, ref in zip(fid.images, fid.reference, strict=True):
        h, w = image.shape[:2]
        xyxy = ref.xyxy
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2 / w, (xyxy[:, 1] + xyxy[:, 3]) / 2 / h
        bw, bh = (xyxy[:, 2] - xyxy[:, 0]) / w, (xyxy[:, 3] - xyxy[:, 1]) / h
        labels = np.column_stack([ref.class_id, cx, cy, bw, bh]).astype(np.float32)
        dets, _ = det.postprocess(det.infer_raw(image, EVAL_PARAMS.conf), EVAL_PARAMS)
        acc.add(dets, labels, w, h)
    return acc


def main() -> int:
    shared = ROOT.parent / "shared"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, default=shared / "datasets" / "coco128")
    ap.add_argument("--data", type=Path, default=shared / "datasets" / "coco-val128")
    ap.add_argument("--video", type=Path, default=shared / "videos" / "street_people_car_tokyo_360p.mp4")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    store = open_store(args.model, calib_dir=args.calib)
    base = store.int8
    recipes: list[tuple[str, object]] = [("default", base)]
    recipes += [(f"{c.method.value} {c.images}" + ("" if c.moving_average else " extremes"), c.apply(base))
                for c in CALIBRATIONS]  # fmt: skip
    recipes += [
        ("per-tensor weights", replace(base, per_channel=False)),
        ("other weight range", replace(base, reduce_range=not base.reduce_range)),
        ("stem in INT8", replace(base, keep_stem_float=False)),
        ("head in INT8", replace(base, keep_head_float=False)),
    ]
    recipes += [(f"model.{i} in float", replace(base, float_nodes=(*base.float_nodes, f"/model.{i}/")))
                for i in range(1, 24) if i not in DATA_MOVERS]  # fmt: skip
    turns = BackendOptions.for_turns(True)
    fp32 = store.open_detector(REFERENCE, turns)
    dataset = load_dataset(args.data)
    images = [load_image(i.image) for i in dataset.items]
    frames, source = fidelity_images(args.count, video=args.video)
    fid = FidelitySet(frames, source, fp32)
    ref_lab = labelled(fp32, dataset.items, images)
    ref_pseudo = pseudo(fp32, fid)
    names = fp32.names
    ref_lab_res, ref_pseudo_res = ref_lab.result(names), ref_pseudo.result(names)
    rows = []
    for label, options in recipes:
        path = store.artefact(Artefact.ONNX_INT8_CPU, int8=options, calib_dir=args.calib)
        with store.open_detector(Variant(Runtime.ORT, Precision.INT8, "x"), turns, path=path) as det:
            t0 = time.perf_counter()
            lab = labelled(det, dataset.items, images)
            t1 = time.perf_counter()
            scores = fid.score(det)
            t2 = time.perf_counter()
            ps = pseudo(det, fid)
            t3 = time.perf_counter()
        lr, pr = lab.result(names), ps.result(names)
        d_lab = paired_delta(ref_lab.matches(), lab.matches(),
                             (lr.map50_95 - ref_lab_res.map50_95, lr.map50 - ref_lab_res.map50)).map50_95  # fmt: skip
        d_fid = versus(None, scores)
        d_ps = paired_delta(ref_pseudo.matches(), ps.matches(), (pr.map50_95 - ref_pseudo_res.map50_95,
                            pr.map50 - ref_pseudo_res.map50), resamples=300).map50_95  # fmt: skip
        row = {
            "candidate": label,
            "labelled": [round(d_lab.value, 3), round(d_lab.lo, 3), round(d_lab.hi, 3)],
            "fidelity": [round(d_fid.value, 3), round(d_fid.lo, 3), round(d_fid.hi, 3)],
            "pseudo_map": [round(d_ps.value, 3), round(d_ps.lo, 3), round(d_ps.hi, 3)],
            "seconds": {"labelled": round(t1 - t0, 1), "fidelity": round(t2 - t1, 1), "pseudo_map": round(t3 - t2, 1)},
        }
        rows.append(row)
        print(f"{label}: labelled {d_lab.words()}; fidelity {d_fid.words()}; pseudo-mAP {d_ps.words()}",
              file=sys.stderr)  # fmt: skip
    fp32.close()
    df = pd.DataFrame({k: [r[k][0] for r in rows] for k in ("labelled", "fidelity", "pseudo_map")})
    ranks = df.rank()  # Spearman: Pearson on ranks (pandas' own spearman needs scipy)
    corr = {k: round(float(ranks["labelled"].corr(ranks[k])), 3) for k in ("fidelity", "pseudo_map")}
    width = {k: round(statistics.median(r[k][2] - r[k][1] for r in rows), 3) for k in ("labelled", "fidelity",
             "pseudo_map")}  # fmt: skip
    secs = {k: round(statistics.median(r["seconds"][k] for r in rows), 1) for k in ("labelled", "fidelity",
            "pseudo_map")}  # fmt: skip
    doc = {"machine": machine_line(system_info()), "labelled_images": len(images), "fidelity_images": source,
           "candidates": len(rows), "spearman_vs_labelled": corr, "median_ci95_width_points": width,
           "median_seconds_per_candidate": secs, "rows": rows}  # fmt: skip
    print(f"{doc['machine']}\n{len(rows)} candidates; labelled: {len(images)} images of {args.data.name}; "
          f"fidelity: {source}\n")  # fmt: skip
    print("| signal | Spearman vs labelled ΔmAP | median 95 % interval width (points) | s per candidate |")
    print("|---|---|---|---|")
    print(f"| labelled ΔmAP50-95 | — | {width['labelled']} | {secs['labelled']} |")
    print(f"| fidelity (soft F1 vs FP32) | {corr['fidelity']} | {width['fidelity']} | {secs['fidelity']} |")
    print(f"| pseudo-label mAP50-95 | {corr['pseudo_map']} | {width['pseudo_map']} | {secs['pseudo_map']} |")
    print("\n| candidate | labelled Δ (95 % CI) | fidelity Δ (95 % CI) | pseudo-mAP Δ (95 % CI) |\n|---|---|---|---|")
    for r in rows:
        cells = [f"{v[0]:+.2f} ({v[1]:+.2f} to {v[2]:+.2f})" for v in (r["labelled"], r["fidelity"], r["pseudo_map"])]
        print(f"| {r['candidate']} | {' | '.join(cells)} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
