"""How many concurrent streams at a frame rate this machine carries, per variant.

``python -m core capacity --variants ort:fp32,ort:int8 --streams 1,2,4 --fps 15 [--clip CLIP] [--seconds 8] [--json]``

Each stream runs its own session with the threads split between the streams (``ov``: OpenVINO's throughput streams
on one compiled model); a stream is carried when it keeps up with the frames and its p95 latency stays under one
frame interval. ``--threads`` is the total to split (default: the physical cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import options
from core.deploy.capacity import CapacityResult, default_clip, measure_capacity
from core.errors import InputError
from core.progress import TqdmProgress
from core.variants import parse_variants

GROUPS = (options.model(), options.post, options.output)


def stream_counts(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4]."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects stream counts like 1,2,4, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expects stream counts of at least 1 like 1,2,4, got {text!r}")
    return sorted(set(counts))


stream_counts.__name__ = "stream counts"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", default="ort:fp32,ort:int8", help="default ort:fp32,ort:int8")
    p.add_argument("--streams", type=stream_counts, default=[1, 2, 4], help="concurrent streams to try (default 1,2,4)")
    p.add_argument("--fps", type=options.positive, default=15.0, help="frames per second per stream (default 15)")
    p.add_argument("--clip", type=Path, help="the clip each stream plays (default: a sample clip, else the demo clip)")
    p.add_argument("--seconds", type=options.positive, default=8.0, help="timed seconds per point (default 8)")
    p.add_argument("--warmup", type=options.at_least(0), default=5, help="untimed frames per stream first (default 5)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip measuring each variant's memory in a fresh process (seconds each)")  # fmt: skip


def run(args: argparse.Namespace) -> CapacityResult:
    variants = parse_variants(args.variants)
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    params = options.post_params(args)
    clip = args.clip or default_clip()
    if not clip.is_file():
        raise InputError(f"clip not found: {clip}")
    store = options.store(args)
    note = store.calibration_note
    if note and any(v.spec.artefact.int8_flavour is not None for v in variants):
        print(f"note: {note} (--calib DIR)", file=sys.stderr)
    points = len(variants) * len(args.streams)
    print(f"capacity: {points} points of {args.seconds:g} s each, on {clip.name}", file=sys.stderr)
    with TqdmProgress("capacity") as bar:
        return measure_capacity(
            store,
            variants,
            args.streams,
            clip,
            fps=args.fps,
            seconds=args.seconds,
            warmup=args.warmup,
            cores=args.threads,
            params=params,
            memory=not args.no_memory,
            progress=bar,
        )
