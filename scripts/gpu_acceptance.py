"""Everything a GPU machine should prove, in one run and one JSON (run by scripts/gpu-acceptance.sh).

1. ``doctor``: the machine, every runtime and why it can or cannot run;
2. ``doctor --gpu-check``: every GPU variant that can run here is built (engines included), run on the
   sample images and the first frames of a clip, and judged against ``ort:fp32`` on the CPU;
3. golden: each runnable GPU variant on bus.jpg, against YOLOv5's official four detections;
4. accuracy: mAP50-95 / mAP50 with the paired interval against ``ort:fp32``, on ``--images`` labelled images;
5. latency: end-to-end p50 with its spread, variants interleaved.

What cannot run here is skipped with its reason (e.g. only PyTorch with CUDA installed: the ONNX Runtime
GPU and TensorRT rows say why, and ``torch-cuda`` is still checked). Exit 0 when every step that ran
passed, 1 otherwise; the JSON is written either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# YOLOv5n v6.1 at 640 on bus.jpg, conf 0.25, IoU 0.45 (tests/runtime/test_detector.py)
OFFICIAL_BUS = [("bus", [51, 235, 810, 781]), ("person", [50, 399, 206, 898]),
                ("person", [220, 408, 349, 864]), ("person", [680, 379, 810, 873])]  # fmt: skip
BOX_TOLERANCE_PX = 8  # FP16 / INT8 kernels move a box edge by a few pixels


def _step(report: dict[str, Any], name: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {name}…", flush=True)
    try:
        result = work()
        report[name] = {"ok": True, "seconds": round(time.perf_counter() - started, 1), "result": result}
    except Exception as exc:  # one step's failure is that step's entry; the others still run
        report[name] = {"ok": False, "seconds": round(time.perf_counter() - started, 1), "error": f"{exc}",
                        "traceback": traceback.format_exc(limit=8)}  # fmt: skip
        print(f"    failed: {exc}", flush=True)
        return None
    print(f"    done in {report[name]['seconds']} s", flush=True)
    return result


def _golden(store, variants) -> dict[str, Any]:
    import numpy as np

    from core.data import load_image, sample_image
    from core.runtime import PostParams

    image = load_image(sample_image("bus.jpg"))
    out = {}
    for v in variants:
        with store.open_detector(v) as det:
            d = det.detect(image, PostParams(conf=0.25, iou=0.45)).detections
        got = sorted(zip(d.class_names, d.xyxy.tolist(), strict=True))
        want = sorted(OFFICIAL_BUS)
        same = [g[0] for g in got] == [w[0] for w in want] and all(
            np.abs(np.array(g[1]) - np.array(w[1])).max() <= BOX_TOLERANCE_PX for g, w in zip(got, want, strict=True)
        )
        out[str(v)] = {"pass": bool(same), "detections": [[c, [round(x, 1) for x in b]] for c, b in got]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, help="calibration images for the INT8 variants (skipped without)")
    ap.add_argument("--data", type=Path, help="labelled set (images/, labels/) for the accuracy step")
    ap.add_argument("--video", type=Path, help="a clip whose first frames join the GPU check")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "gpu-acceptance.json")
    args = ap.parse_args()

    from core.cli import doctor
    from core.model import open_store
    from core.runtime import runtime_availability, system_info
    from core.variants import REFERENCE

    started = time.perf_counter()
    report: dict[str, Any] = {"system": system_info(), "model": args.model}
    store = open_store(args.model, calib_dir=args.calib)
    report["runtimes"] = runtime_availability()
    check = _step(report, "gpu_check", lambda: doctor.gpu_check(lambda: store, args.video).to_dict())
    runnable, unavailable = doctor.gpu_variants()
    runnable = [v for v in runnable if not store.missing_input(v)]
    report["skipped"] = {**unavailable, **{str(v): store.missing_input(v) for v in doctor.gpu_variants()[0]
                                          if store.missing_input(v)}}  # fmt: skip
    if runnable:
        _step(report, "golden_bus", lambda: _golden(store, runnable))
        if args.data is not None:

            def accuracy() -> list[dict[str, Any]]:
                from core.data import load_dataset
                from core.measure import evaluate

                dataset = load_dataset(args.data, args.images)
                detectors = [store.open_detector(v) for v in [REFERENCE, *runnable]]
                try:
                    results = evaluate(detectors[1:], dataset, reference=detectors[0], batch_size=1)
                finally:
                    for d in detectors:
                        d.close()
                return [r.to_dict() for r in results]

            _step(report, "accuracy", accuracy)
        else:
            report["skipped"]["accuracy"] = "no --data given"

        def latency() -> list[dict[str, Any]]:
            from core.data import load_image, sample_image
            from core.measure import benchmark_variants

            detectors = [store.open_detector(v) for v in [REFERENCE, *runnable]]
            try:
                rows = benchmark_variants(detectors, load_image(sample_image("bus.jpg")), 20, args.iterations)
            finally:
                for d in detectors:
                    d.close()
            return [r.to_dict() for r in rows]

        _step(report, "latency", latency)
    report["seconds"] = round(time.perf_counter() - started, 1)
    steps = [report[k] for k in ("gpu_check", "golden_bus", "accuracy", "latency") if k in report]
    passed = all(s["ok"] for s in steps)
    passed &= check is not None and check["status"] in ("passed", "nothing-to-check")
    passed &= all(g["pass"] for g in (report.get("golden_bus", {}).get("result") or {}).values())
    report["passed"] = passed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"{'PASSED' if passed else 'FAILED'} in {report['seconds']} s; everything in {args.out}")
    for what, why in report["skipped"].items():
        print(f"  skipped {what}: {why}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
