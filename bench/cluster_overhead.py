"""What running a variant through Ray costs on top of running it in-process (issue: cluster), on one machine.

    .venv/bin/python bench/cluster_overhead.py [--model yolov5n] [--iterations 200] [--json FILE]

Starts a local two-node cluster (``ray.cluster_utils.Cluster``: a head and a node named "box"), opens
``ort:fp32`` in this process and ``box/ort:fp32`` on the second node, and times both on bus.jpg at 640 in
interleaved rounds (``core.bench``). Per call it reports the node's own latency (letterbox + inference +
post-processing, measured there), the transfer (object store + actor call: wall time here minus the node's)
and the wall time here. Target: the transfer adds <= 3 ms per image.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench._local_cluster import two_nodes, write_json
from core.backends import BackendOptions
from core.images import load_image
from core.metrics import LatencySpread
from core.samples import default_sample
from core.store import open_store
from core.system import system_info
from core.variants import Variant


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--json", type=Path, default=Path("artifacts/cluster_overhead.json"))
    args = ap.parse_args()

    store = open_store(args.model, cache_dir=args.cache_dir)
    image = load_image(default_sample())
    opts = BackendOptions.for_turns(True)
    walls: dict[str, list[float]] = {"local": [], "remote": []}
    node: list[float] = []
    with two_nodes("box"):
        local = store.open_detector(Variant.parse("ort:fp32"), opts)
        remote = store.open_detector(Variant.parse("box/ort:fp32"), opts)
        try:
            for det in (local, remote):
                for _ in range(5):
                    det.detect(image)
            remote.transfer_ms.clear()
            for i in range(args.iterations):
                pair = (local, remote) if i % 2 == 0 else (remote, local)  # alternate who goes first
                for det in pair:
                    t = time.perf_counter()
                    res = det.detect(image)
                    wall = (time.perf_counter() - t) * 1e3
                    walls["local" if det is local else "remote"].append(wall)
                    if det is remote:
                        node.append(res.timings.total)
                if (i + 1) % 50 == 0:
                    print(f"{i + 1}/{args.iterations}", file=sys.stderr, flush=True)
        finally:
            remote.close()
            local.close()
    spread = {k: LatencySpread.from_samples(v) for k, v in walls.items()}
    transfer = LatencySpread.from_samples(remote.transfer_ms)
    added = float(np.median(np.asarray(walls["remote"]) - np.asarray(walls["local"])))
    out = {
        "system": system_info(),
        "iterations": args.iterations,
        "local_wall_p50_ms": round(spread["local"].p50, 3),
        "remote_wall_p50_ms": round(spread["remote"].p50, 3),
        "remote_node_latency_p50_ms": round(float(np.median(node)), 3),
        "transfer_p50_ms": round(transfer.p50, 3),
        "transfer_p90_ms": round(float(np.percentile(remote.transfer_ms, 90)), 3),
        "added_wall_p50_ms": round(added, 3),
        "bar_ms": 3.0,
        "pass": transfer.p50 <= 3.0,
    }
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
