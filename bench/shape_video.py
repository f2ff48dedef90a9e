"""The rect input shape on a 16:9 clip: frames per second against square, and whether the detections agree.

    .venv/bin/python bench/shape_video.py VIDEO [--model yolov5n] [--variant ort:fp32] [--rounds 4] [--out FILE]

``python -m core video`` as the CLI runs it (``core.video.process_video``, no output file), once with
``--shape square`` and once with ``--shape rect``, in alternating order over ``--rounds`` rounds so drift in the
machine's load hits both; the speed-up is the median of each round's rect fps / square fps. Agreement: every
frame's rect detections matched to square's (same class, IoU >= 0.5, core.measure.agreement), as the share of
square's boxes rect also finds, over the whole clip.

Bars (issue: input shape): speed-up >= 1.3, agreement >= 95 %. Prints markdown, writes JSON; exits 1 if a bar is
missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.measure.metrics import agreement_parts, merge_agreements
from core.model import open_store
from core.runtime import BackendOptions, PostParams, machine_line, system_info
from core.variants import Shape, Variant
from core.video import probe, process_video

SPEEDUP_BAR, AGREEMENT_BAR = 1.3, 0.95


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", type=Path)
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--variant", default="ort:fp32")
    ap.add_argument("--calib", type=Path, default=None, help="calibration folder (an INT8 variant)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = ap.parse_args()

    variant = Variant.parse(args.variant)
    square = open_store(args.model, calib_dir=args.calib)
    stores = {Shape.SQUARE: square, Shape.RECT: replace(square, shape=Shape.RECT)}
    dets = {shape: s.open_detector(variant, BackendOptions.for_turns(True)) for shape, s in stores.items()}
    info = probe(args.video)
    params = PostParams()
    fps: dict[Shape, list[float]] = {s: [] for s in stores}
    ratios: list[float] = []
    frames: dict[Shape, list] = {}
    hw: dict[Shape, tuple[int, int]] = {}
    for r in range(args.rounds):
        order = (Shape.SQUARE, Shape.RECT) if r % 2 == 0 else (Shape.RECT, Shape.SQUARE)
        got = {}
        for shape in order:
            seen: list = []
            run = process_video(args.video, [dets[shape]], params, on_frame=lambda u, seen=seen: seen.append(u))
            got[shape] = run.fps_processed
            fps[shape].append(run.fps_processed)
            hw[shape] = run.input_hw
            frames.setdefault(shape, [u.results[str(variant)].detections for u in seen])
        ratios.append(got[Shape.RECT] / got[Shape.SQUARE])
    for d in dets.values():
        d.close()

    parts = [agreement_parts(a, b, 0.5) for a, b in zip(frames[Shape.SQUARE], frames[Shape.RECT], strict=True)]
    agree = merge_agreements(parts)
    square_boxes = agree.matched + agree.missed
    share = agree.matched / square_boxes if square_boxes else 1.0
    speedup = statistics.median(ratios)
    doc = {
        "machine": machine_line(system_info()),
        "video": args.video.name,
        "video_size": [info.width, info.height],
        "frames": len(frames[Shape.SQUARE]),
        "variant": str(variant),
        "input_hw": {s.value: list(hw[s]) for s in stores},
        "fps": {s.value: [round(f, 2) for f in fps[s]] for s in stores},
        "fps_median": {s.value: round(statistics.median(fps[s]), 2) for s in stores},
        "speedup_per_round": [round(x, 3) for x in ratios],
        "speedup": round(speedup, 3),
        "square_boxes": square_boxes,
        "rect_found": agree.matched,
        "rect_extra": agree.extra,
        "agreement": round(share, 4),
        "bars": {"speedup": SPEEDUP_BAR, "agreement": AGREEMENT_BAR},
    }
    ok = speedup >= SPEEDUP_BAR and share >= AGREEMENT_BAR
    print(f"{doc['machine']}; {args.video.name} ({info.width}x{info.height}), {doc['frames']} frames, {variant}, "
          f"{args.rounds} rounds")  # fmt: skip
    print("\n| shape | input | fps (median) | per round |\n|---|---|---|---|")
    for s in stores:
        h, w = hw[s]
        print(
            f"| {s.value} | {w}x{h} | {doc['fps_median'][s.value]} | {', '.join(str(f) for f in doc['fps'][s.value])} |"
        )
    print(f"\nrect / square: {speedup:.2f}x (bar {SPEEDUP_BAR}); rect finds {agree.matched} of square's {square_boxes} "
          f"boxes ({share:.1%}, bar {AGREEMENT_BAR:.0%}), {agree.extra} more of its own")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
