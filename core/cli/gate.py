"""Pass, fail or inconclusive for one variant, by the intervals of eval and bench --json results (exit 0/1/3).

``python -m core gate eval.json bench.json --variant ort:int8 [--max-map-drop 0.5] [--min-speedup 1.0]
[--max-p95-increase 10%] [--baseline OLD_eval.json OLD_bench.json] [--allow-different-machines] [--json]``

A rule passes when its whole 95 % interval is allowed, fails when none of it is, and is inconclusive when the
interval straddles the limit. Exit codes: 0 every rule passed, 1 a rule failed, 3 inconclusive (none failed),
2 a usage error (a file that is not an eval / bench result, a variant it lacks, a baseline from another machine).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import options
from core.deploy.gate import GateResult, Limits, MachineMismatchError, gate
from core.errors import InputError

GROUPS = (options.output,)


def percent(text: str) -> float:
    """'10%' or '10': per cent, at least 0."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a percentage such as 10%, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0 %, got {text}")
    return value


percent.__name__ = "percentage"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=Path, metavar="RESULT.json", help="eval and/or bench --json output")
    p.add_argument("--variant", required=True, help="the variant to gate, as the results name it (e.g. ort:int8)")
    p.add_argument(
        "--max-map-drop",
        type=options.between(0.0, 100.0),
        default=None,
        metavar="POINTS",
        help="mAP50-95 points the variant may lose against the reference (and the baseline); default 0.5",
    )
    p.add_argument(
        "--min-speedup",
        type=options.positive,
        default=None,
        metavar="X",
        help="speed-up over the bench's reference (its first variant) it must reach; default 1.0",
    )
    p.add_argument(
        "--max-p95-increase",
        type=percent,
        default=None,
        metavar="PCT",
        help="how much higher its p95 may be than the reference's (and the baseline's), e.g. 10%%",
    )
    p.add_argument(
        "--max-p50-increase",
        type=percent,
        default=None,
        metavar="PCT",
        help="with --baseline: how much higher its p50 may be than the baseline's; default 10%%",
    )
    p.add_argument(
        "--baseline",
        nargs="+",
        type=Path,
        default=[],
        metavar="OLD.json",
        help="the same eval / bench run earlier (previous model or software), same data and machine",
    )
    p.add_argument(
        "--allow-different-machines",
        action="store_true",
        help="compare results whose fingerprints differ in machine or settings (the differences are listed)",
    )


def run(args: argparse.Namespace) -> GateResult:
    limits = Limits(args.max_map_drop, args.min_speedup, args.max_p95_increase, args.max_p50_increase)
    try:
        return gate(args.results, args.variant, limits, args.baseline, args.allow_different_machines)
    except MachineMismatchError as exc:
        raise InputError(f"{exc}: pass --allow-different-machines to compare them anyway") from None
