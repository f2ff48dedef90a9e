"""mAP and agreement with FP32 on a labelled YOLO-format folder.

``python -m core eval --model M --data DIR --variants ort:fp32,ort:int8 [--batch N] [--json]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli import options
from core.data import load_dataset
from core.measure import SHARDED_LATENCY, EvalRun, evaluate, summarize
from core.model import ModelStore
from core.progress import TqdmProgress
from core.runtime import PostParams, runnable_cpu_variants, system_info
from core.variants import REFERENCE, Variant, parse_variants, with_reference

GROUPS = (options.model(), options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="folder with images/ and labels/")
    p.add_argument("--variants", default=None, help="default: every CPU variant this machine can run")
    p.add_argument("--max-images", type=options.at_least(1), default=None)
    p.add_argument("--batch", type=options.at_least(1), default=1, help="images per runtime call (default 1)")
    p.add_argument("--shards", type=options.at_least(1), default=None,
                   help="with --cluster: split the images over the cluster, this many chunks at a time; the result "
                   "is the same as one process's")  # fmt: skip


def _sharded(store: ModelStore, variants: list[Variant], needed: list[Variant], dataset: Any, shards: int) -> Any:
    from core.cluster import current, sharded_collect

    cluster = current()
    with TqdmProgress(f"eval in shards over {len(cluster.nodes())} node(s)") as bar:
        got, shown, unreadable = sharded_collect(cluster, store, needed, dataset.items, shards, PostParams(), bar)
    dataset.inventory.unreadable_images += unreadable
    return summarize(got[: len(variants)], got[needed.index(REFERENCE)], shown)


def run(args: argparse.Namespace) -> EvalRun:
    variants = parse_variants(args.variants or [str(v) for v in runnable_cpu_variants()])
    store = options.store(args)
    dataset = load_dataset(args.data, args.max_images)
    for warning in (dataset.layout and f"note: read {dataset.layout}", dataset.inventory.pairing_warning,
                    dataset.names_mismatch(store.info().names)):  # fmt: skip
        if warning:
            print(warning if warning.startswith("note:") else f"warning: {warning}", file=sys.stderr)
    needed = with_reference(variants)
    if args.shards:
        results = _sharded(store, variants, needed, dataset, args.shards)
    else:
        detectors = {v: options.open_detector(store, v, args, in_turn=len(needed) > 1) for v in needed}
        try:
            with TqdmProgress("eval") as bar:
                results = evaluate(
                    [detectors[v] for v in variants],
                    dataset,
                    reference=detectors[REFERENCE],
                    progress=bar,
                    batch_size=args.batch,
                )
        finally:
            for det in detectors.values():
                det.close()
    return EvalRun(
        store.source.name,
        store.input_size,
        str(args.data),
        dataset.inventory,
        str(REFERENCE),
        args.batch,
        results,
        latency_source=SHARDED_LATENCY if args.shards else "",
        shape=store.shape.value,
        system=system_info(),
        threads=args.threads,
        model_sha256=store.source.sha256,
    )
