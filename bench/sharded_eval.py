"""Sharded evaluation through Ray against one process (issue: cluster): wall times and the identical result.

    .venv/bin/python bench/sharded_eval.py --model M --data DIR [--shards 2] [--json FILE]

One process: ``core.measure.evaluation.evaluate`` of ort:fp32 on --data. Sharded: a local two-node cluster
(``ray.cluster_utils.Cluster``, one CPU each), ``core.cluster.sharded_collect`` with --shards chunks in
flight, merged and summarised. Prints both wall times, whether every figure is identical, and the per-image
cost that the README extrapolates from.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._local_cluster import two_nodes, write_json
from core import cluster as cl
from core.data import load_dataset
from core.measure import evaluate, summarize
from core.model import open_store
from core.runtime import PostParams, system_info
from core.variants import REFERENCE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("artifacts/sharded_eval.json"))
    args = ap.parse_args()

    store = open_store(args.model, cache_dir=args.cache_dir)
    dataset = load_dataset(args.data)
    t = time.perf_counter()
    with store.open_detector(REFERENCE) as det:
        local = evaluate([det], dataset, reference=det, resamples=0)[0]
    local_s = time.perf_counter() - t

    with two_nodes("box") as cluster:
        t = time.perf_counter()
        got, shown, _ = cl.sharded_collect(
            cluster, store, [REFERENCE], dataset.items, args.shards, PostParams(),
            lambda f, m: print(f"{100 * f:5.1f}% {m}", file=sys.stderr, flush=True),
        )  # fmt: skip
        sharded = summarize(got, got[0], shown, resamples=0)[0]
        sharded_s = time.perf_counter() - t
    n = len(dataset.items)
    out = {
        "system": system_info(),
        "images": n,
        "shards_in_flight": args.shards,
        "one_process_s": round(local_s, 2),
        "sharded_s": round(sharded_s, 2),
        "identical": local.accuracy.map50_95 == sharded.accuracy.map50_95
        and local.accuracy.map50 == sharded.accuracy.map50,
        "map50_95": local.accuracy.map50_95,
        "map50": local.accuracy.map50,
        "per_image_ms_one_process": round(1e3 * local_s / n, 2),
        "per_image_ms_sharded": round(1e3 * sharded_s / n, 2),
    }
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
