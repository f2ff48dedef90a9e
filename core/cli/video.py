"""Side-by-side annotated H.264 video and per-frame latency.

``python -m core video CLIP --model M --variants ort:fp32,ort:int8 --output side.mp4 [--csv F] [--json]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import options
from core.progress import TqdmProgress
from core.variants import parse_variants
from core.video import VideoRun, process_video

GROUPS = (options.model(), options.post, options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", type=Path)
    p.add_argument("--variants", default="ort:fp32,ort:int8")
    p.add_argument("--output", "-o", type=Path, required=True, help="the side-by-side MP4 to write")
    p.add_argument("--max-frames", type=options.at_least(1), default=None)
    p.add_argument("--csv", type=Path, help="also write per-frame latencies here")


def run(args: argparse.Namespace) -> VideoRun:
    variants = parse_variants(args.variants)
    params = options.post_params(args)
    store = options.store(args)
    detectors = [options.open_detector(store, v, args, in_turn=True) for v in variants]  # shared with decode/encode
    try:
        with TqdmProgress(f"video {args.video.name}") as bar:
            result = process_video(args.video, detectors, params, args.output, args.max_frames, progress=bar)
    finally:
        for det in detectors:
            det.close()
    if args.csv:
        result.write_csv(args.csv)
    if result.damage and not args.json:
        print(f"warning: {result.damage}", file=sys.stderr)
    for why in result.lost.values():
        print(f"warning: {why}", file=sys.stderr)
    return result
