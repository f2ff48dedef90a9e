"""Measurements: mAP, latency statistics and intervals, benchmarks, per-block profiles, comparisons, evaluation,
decision cards, and the transfer of variants on cluster nodes; runs on a worker thread (:class:`Job`: a
benchmark, an evaluation, and what the video and precision rooms build on it).
"""

from __future__ import annotations

from core.measure.accuracy import MapAccumulator, MapResult
from core.measure.bench import BenchResult, BenchRun, bench_table, benchmark_variants
from core.measure.bootstrap import Interval, MapDelta, paired_delta, weighted_map
from core.measure.compare import (
    MIN_CONF,
    CompareResult,
    CompareRun,
    ImageComparison,
    InputImage,
    digest,
    read_image_files,
    read_images,
)
from core.measure.decision import DecisionCard, build_cards, cards_table
from core.measure.evaluation import (
    SHARDED_LATENCY,
    Collected,
    EvalRun,
    VariantEval,
    collect,
    eval_table,
    evaluate,
    per_class_table,
    summarize,
)
from core.measure.footprint import Footprint, measure_footprint
from core.measure.job import BenchJob, EvalJob, Job, Stopped
from core.measure.metrics import (
    Agreement,
    LatencySpread,
    LatencyStats,
    Match,
    Speedup,
    agreement_over,
    match_detections,
    pareto_front,
)
from core.measure.profile import BlockTime, ProfileRun, VariantProfile, profile_variants
from core.measure.transfer import (
    TransferWatch,
    transfer_lines,
    transfer_stats,
    transfer_words,
)

__all__ = [
    "MIN_CONF",
    "SHARDED_LATENCY",
    "Agreement",
    "BenchJob",
    "BenchResult",
    "BenchRun",
    "BlockTime",
    "Collected",
    "CompareResult",
    "CompareRun",
    "DecisionCard",
    "EvalJob",
    "EvalRun",
    "Footprint",
    "ImageComparison",
    "InputImage",
    "Interval",
    "Job",
    "LatencySpread",
    "LatencyStats",
    "MapAccumulator",
    "MapDelta",
    "MapResult",
    "Match",
    "ProfileRun",
    "Speedup",
    "Stopped",
    "TransferWatch",
    "VariantEval",
    "VariantProfile",
    "agreement_over",
    "bench_table",
    "benchmark_variants",
    "build_cards",
    "cards_table",
    "collect",
    "digest",
    "eval_table",
    "evaluate",
    "match_detections",
    "measure_footprint",
    "paired_delta",
    "pareto_front",
    "per_class_table",
    "profile_variants",
    "read_image_files",
    "read_images",
    "summarize",
    "transfer_lines",
    "transfer_stats",
    "transfer_words",
    "weighted_map",
]
