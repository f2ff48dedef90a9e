"""The precision explorer's bars (issue: explorer statistics), measured end to end on this machine.

    .venv/bin/python bench/explore_bar.py --calib DIR --data DIR --fidelity-video CLIP [--target-drop 0.3]
        [--json FILE] [--md FILE]

1. A whole ``explore`` run (drift on 16 images, fidelity on up to 500 unlabelled frames, sensitivity over every
   block, the search, the confirmation on all of --data), timed: bar <= 600 s.
2. Each candidate's fidelity with its interval over >= 256 unlabelled images.
3. The chosen recipe, used as a variant: its mAP50-95 loss against FP32 on all of --data (paired interval) <= 0.45
   points, and its end-to-end p50 >= 1.05x FP32's in one interleaved benchmark (20 images of --data x 8 rounds).
   If it misses, the run's candidates show whether any could have: the most faithful one is measured the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import load_dataset, load_image
from core.model import open_store
from core.precision import Explorer, ExploreSettings
from core.runtime import BackendOptions, PostParams, machine_line, system_info
from core.variants import REFERENCE, Precision, Runtime, Variant

LOSS_BAR, SPEED_BAR, WALL_BAR, IMAGES_BAR = 0.45, 1.05, 600.0, 256


def interleaved_p50(store, paths: dict[str, Path | None], images, rounds: int) -> dict[str, float]:
    """End-to-end ms per image (Detector.detect), every pipeline in turn per image, median over rounds x images."""
    turns = BackendOptions.for_turns(True)
    dets = {
        k: store.open_detector(REFERENCE, turns) if p is None
        else store.open_detector(Variant(Runtime.ORT, Precision.INT8, "bar"), turns, path=p)
        for k, p in paths.items()
    }  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in dets}
    params = PostParams()
    for d in dets.values():
        d.detect(images[0], params)
    for _ in range(rounds):
        for image in images:
            for k, d in dets.items():
                t = time.perf_counter()
                d.detect(image, params)
                times[k].append((time.perf_counter() - t) * 1e3)
    for d in dets.values():
        d.close()
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--fidelity-video", type=Path, default=None)
    ap.add_argument("--fidelity-images", type=Path, default=None)
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--target-drop", type=float, default=0.3)
    ap.add_argument("--json", type=Path, default=Path("artifacts/explore_bar.json"))
    ap.add_argument("--md", type=Path)
    args = ap.parse_args()

    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    dataset = load_dataset(args.data)
    settings = ExploreSettings(
        target_drop=args.target_drop, fidelity_video=args.fidelity_video, fidelity_images=args.fidelity_images
    )
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.02 or fraction >= 1.0:
            last[0] = fraction
            print(f"{time.strftime('%H:%M:%S')} {100 * fraction:5.1f}% {message}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    result = Explorer(store, dataset, settings, progress).run()
    wall = time.perf_counter() - t0
    best = result.best
    most = max(result.candidates, key=lambda c: c.fidelity.value)
    images = [load_image(i.image) for i in dataset.items[:20]]
    paths: dict[str, Path | None] = {"ort:fp32": None}
    if best is not None:
        paths["chosen"] = best.candidate.path
    if most is not (best.candidate if best else None):
        paths["most faithful"] = most.path
    p50 = interleaved_p50(store, paths, images, 8)
    speed = {k: p50["ort:fp32"] / v for k, v in p50.items() if k != "ort:fp32"}
    loss = None if best is None else -best.report.map50_95.value
    bars = {
        "wall_s": round(wall, 1),
        "wall_ok": wall <= WALL_BAR,
        "fidelity_images": result.fidelity_images,
        "fidelity_images_ok": result.fidelity_images >= IMAGES_BAR,
        "chosen_loss_points": None if loss is None else round(loss, 3),
        "chosen_loss_ok": loss is not None and loss <= LOSS_BAR,
        "chosen_speedup": round(speed.get("chosen", 0.0), 3),
        "chosen_speed_ok": speed.get("chosen", 0.0) >= SPEED_BAR,
    }
    lines = [
        f"{machine_line(system_info())}",
        f"explore --target-drop {args.target_drop}: {wall:.0f} s; fidelity on {result.fidelity_source}; "
        f"{result.labelled.get('images')} labelled images confirm",
        "",
        "| candidate | Δ fidelity (95 % CI) | p50 ms | speed-up | front |",
        "|---|---|---|---|---|",
    ]
    for c in result.candidates:
        sp = f"{c.speedup.value:.2f}× ({c.speedup.lo:.2f}–{c.speedup.hi:.2f})" if c.speedup else "—"
        lines.append(f"| {c.label} | {c.fidelity.words().replace(' points', '')} | {c.p50_ms or 0:.1f} | {sp} | "
                     f"{'yes' if c.pareto else ''} |")  # fmt: skip
    if best is not None:
        lines += [
            "",
            f"chosen: {best.candidate.label} ({best.recipe}); {best.why}",
            f"labelled (all {best.report.images} images): {best.report.map50_95.words()} vs FP32; default recipe "
            f"{best.default_report.map50_95.words()}; confirmed: {best.meets_target}",
        ]
    lines += [
        f"end to end, {len(images)} images x 8 rounds interleaved: "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in p50.items())
        + "; speed-up "
        + ", ".join(f"{k} {v:.2f}×" for k, v in speed.items()),
        f"bars: run <= {WALL_BAR:.0f} s: {'PASS' if bars['wall_ok'] else 'FAIL'}; >= {IMAGES_BAR} fidelity images: "
        f"{'PASS' if bars['fidelity_images_ok'] else 'FAIL'}; chosen loss <= {LOSS_BAR}: "
        f"{'PASS' if bars['chosen_loss_ok'] else 'FAIL'}; chosen >= {SPEED_BAR}× FP32: "
        f"{'PASS' if bars['chosen_speed_ok'] else 'FAIL'}",
        *[f"note: {n}" for n in result.notes],
    ]
    text = "\n".join(lines)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"bars": bars, "p50_ms": p50, "explore": result.to_dict()}, indent=2))
    if args.md:
        args.md.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
