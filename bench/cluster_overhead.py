"""What running a variant through Ray costs on top of running it in-process (issue: cluster), on one machine.

    .venv/bin/python bench/cluster_overhead.py [--model yolov5n] [--images DIR] [--iterations 200] [--json FILE]

Starts a local two-node cluster (``ray.cluster_utils.Cluster``: a head and a node named "box"), opens
``ort:fp32`` in this process and ``box/ort:fp32`` on the second node, and times both in interleaved rounds
on the pictures of --images (default: the bundled samples), each round a **new frame** (a fresh array, as
a video or an image set gives: nothing is already on the node). Per call: the node's own latency
(letterbox + inference + post-processing, measured there), the transfer (the frame there and the result
back, object store or inlined call: wall time here minus the node's) and the wall time here. Then the
same with two variants open on the box reading each frame (the frame is put into the object store once
for both). Target: the transfer adds <= 3 ms per image at 640.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench._local_cluster import two_nodes, write_json
from core.data import load_image, sample_image
from core.model import list_images, open_store
from core.runtime import BackendOptions, Detector, system_info
from core.variants import Variant


def _rounds(dets: list[Detector], frames: list[np.ndarray], n: int) -> dict[str, list[float]]:
    """``n`` rounds, a new copy of the next frame each, every detector once per round in rotating order."""
    walls: dict[str, list[float]] = {f"{i}:{d.variant}": [] for i, d in enumerate(dets)}
    for d in dets:
        for f in frames[:3]:
            d.detect(f.copy())
        getattr(d, "transfer_ms", []).clear()
    for r in range(n):
        frame = frames[r % len(frames)].copy()
        for k in range(len(dets)):
            i = (r + k) % len(dets)
            t = time.perf_counter()
            dets[i].detect(frame)
            walls[f"{i}:{dets[i].variant}"].append((time.perf_counter() - t) * 1e3)
        if (r + 1) % 50 == 0:
            print(f"{r + 1}/{n}", file=sys.stderr, flush=True)
    return walls


def _p(samples: list[float], q: float = 50) -> float:
    return round(float(np.percentile(samples, q)), 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--images", type=Path, help="a folder of pictures (default: bus.jpg and zidane.jpg)")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--json", type=Path, default=Path("artifacts/cluster_overhead.json"))
    args = ap.parse_args()

    store = open_store(args.model, cache_dir=args.cache_dir)
    paths = list_images(args.images)[:64] if args.images else [sample_image("bus.jpg"), sample_image("zidane.jpg")]
    frames = [load_image(p) for p in paths]
    mb = float(np.median([f.nbytes for f in frames])) / 1e6
    opts = BackendOptions.for_turns(True)
    fp32 = Variant.parse("ort:fp32")
    out: dict = {"system": system_info(), "iterations": args.iterations, "frames": len(frames),
                 "frame_mb_median": round(mb, 3), "bar_ms": 3.0}  # fmt: skip
    with two_nodes("box"):
        local = store.open_detector(fp32, opts)
        remote = store.open_detector(fp32.on("box"), opts)
        try:
            walls = _rounds([local, remote], frames, args.iterations)
            here, there = walls["0:ort:fp32"], walls["1:box/ort:fp32"]
            out["one_variant_on_the_node"] = {
                "local_wall_p50_ms": _p(here),
                "remote_wall_p50_ms": _p(there),
                "transfer_p50_ms": _p(remote.transfer_ms),
                "transfer_p90_ms": _p(remote.transfer_ms, 90),
                "added_wall_p50_ms": round(float(np.median(np.asarray(there) - np.asarray(here))), 2),
            }
            second = store.open_detector(fp32.on("box"), opts)  # two readers on the node: one shared copy
            try:
                _rounds([remote, second], frames, args.iterations // 2)
                both = remote.transfer_ms + second.transfer_ms
                out["two_variants_on_the_node"] = {"transfer_p50_ms": _p(both), "transfer_p90_ms": _p(both, 90)}
            finally:
                second.close()
        finally:
            remote.close()
            local.close()
    out["pass"] = out["one_variant_on_the_node"]["transfer_p50_ms"] <= 3.0
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
