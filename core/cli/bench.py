"""Latency percentiles and stage split per variant, timed in interleaved rounds.

``python -m core bench --model M --variants ort:fp32,ort:int8 [--image IMG] [--batch N] [--json]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import options
from core.data import default_sample, load_image
from core.measure import BenchRun, TransferWatch, benchmark_variants, measure_footprint
from core.progress import TqdmProgress
from core.runtime import runnable_cpu_variants, system_info
from core.variants import parse_variants

GROUPS = (options.model(), options.post, options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", default=None, help="default: every CPU variant this machine can run")
    p.add_argument("--image", type=Path, help="image to run (default: the bus.jpg sample)")
    p.add_argument("--warmup", type=options.at_least(0), default=10)
    p.add_argument("--iterations", type=options.at_least(1), default=100)
    p.add_argument("--batch", type=options.at_least(1), default=1, help="throughput mode: images per runtime call")
    p.add_argument("--memory", action="store_true",
                   help="also measure each variant's memory, loaded in a fresh process (seconds each)")  # fmt: skip


def run(args: argparse.Namespace) -> BenchRun:
    variants = parse_variants(args.variants or [str(v) for v in runnable_cpu_variants()])
    params = options.post_params(args)
    store = options.store(args)
    image_path = args.image or default_sample()
    image = load_image(image_path)
    detectors = [options.open_detector(store, v, args) for v in variants]  # build everything before timing
    try:
        watch = TransferWatch.start(detectors)
        with TqdmProgress("bench") as bar:
            rows = benchmark_variants(
                detectors,
                image,
                warmup=args.warmup,
                iterations=args.iterations,
                params=params,
                progress=bar,
                batch=args.batch,
            )
        transfers = watch.samples()
        footprints = [measure_footprint(d, store.variant_artefact(d.variant)) for d in detectors
                      if args.memory and d.node is None]  # fmt: skip
    finally:
        for det in detectors:
            det.close()
    nodes = {str(d.variant): d.node.to_dict() for d in detectors if d.node is not None}
    return BenchRun(
        system_info(),
        store.source.name,
        store.input_size,
        str(image_path),
        args.batch,
        rows,
        threads=args.threads,
        iterations=args.iterations,
        transfers=transfers,
        nodes=nodes,
        footprints=footprints,
        shape=store.shape.value,
        model_sha256=store.source.sha256,
    )
