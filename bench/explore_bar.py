"""The precision explorer's bars (issue: precision explorer), measured end to end on this machine.

    .venv/bin/python bench/explore_bar.py --calib DIR --data DIR [--target-drop 0.3] [--json FILE] [--md FILE]

1. A whole ``explore`` run (drift on 16 images, sensitivity over every block, the search), timed: bar <= 600 s.
2. The chosen recipe's loss on the report split <= the target and its p50 >= 1.1x FP32's in the same run.
3. Whether any candidate dominates the default ``ort:int8`` on both splits (more accurate, not measurably slower).

For (3) and for the table, every candidate is ALSO evaluated on the report split after the run. The search
never sees these numbers; they show how well the search split predicts the report split at this size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import load_dataset
from core.model import open_store
from core.precision import Explorer, ExploreSettings, _faster, _Split, split_items
from core.runtime import system_info
from core.variants import REFERENCE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--target-drop", type=float, default=0.3)
    ap.add_argument("--json", type=Path, default=Path("artifacts/explore_bar.json"))
    ap.add_argument("--md", type=Path)
    args = ap.parse_args()

    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    dataset = load_dataset(args.data)
    settings = ExploreSettings(target_drop=args.target_drop)
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.02 or fraction >= 1.0:
            last[0] = fraction
            print(f"{time.strftime('%H:%M:%S')} {100 * fraction:5.1f}% {message}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    explorer = Explorer(store, dataset, settings, progress)
    result = explorer.run()
    wall = time.perf_counter() - t0

    _, report_items = split_items(dataset.items, settings.search_split)
    report = _Split.load("report", report_items)
    with store.open_detector(REFERENCE) as fp32:
        ref = report.evaluate(fp32).result(fp32.names)
    rows = []
    for c in result.candidates:
        with explorer._open(c.key, c.path) as det:
            got = report.evaluate(det).result(det.names)
        rows.append((c, 100.0 * (got.map50_95 - ref.map50_95)))
    default, default_report = rows[0]
    dominating = [
        c.label
        for c, rep in rows[1:]
        if c.delta_points > default.delta_points and rep > default_report and not _faster(default, c)
    ]
    best = result.best
    best_report = best.report.map50_95.value if best else None
    speedup = best.candidate.speedup.value if best and best.candidate.speedup else None
    bars = {
        "wall_s": round(wall, 1),
        "wall_ok": wall <= 600,
        "best": best.to_dict() if best else None,
        "best_loss_ok": best_report is not None and -best_report <= args.target_drop,
        "best_speed_ok": speedup is not None and speedup >= 1.1,
        "dominating_default": dominating,
    }
    lines = [
        f"explore on {store.source.name}, {len(dataset.items)} labelled images "
        f"({result.splits['search']} search / {result.splits['report']} report), target {args.target_drop} points: "
        f"{wall:.0f} s",
        "",
        "| candidate | settings | Δ search (pts) | Δ report (pts) | p50 ms | speed-up (95 %) | front |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for c, rep in rows:
        sp = c.speedup
        span = f"{sp.value:.2f}x ({sp.lo:.2f}-{sp.hi:.2f})" if sp else ""
        lines.append(
            f"| {c.label} | {c.to_dict()['recipe']} | {c.delta_points:+.2f} | {rep:+.2f} | "
            f"{c.p50_ms or 0:.1f} | {span} | {'yes' if c.pareto else ''} |"
        )
    lines += [
        "",
        f"FP32 p50 {result.fp32_p50_ms:.1f} ms; chosen: {best.candidate.label if best else 'none'}; "
        f"report split {best_report:+.2f} points; speed-up {speedup}"
        if best
        else "no recipe chosen",
        f"bars: whole run <= 600 s: {'PASS' if bars['wall_ok'] else 'FAIL'}; loss on the report split <= "
        f"{args.target_drop}: {'PASS' if bars['best_loss_ok'] else 'FAIL'}; p50 >= 1.1x FP32: "
        f"{'PASS' if bars['best_speed_ok'] else 'FAIL'}; candidates dominating the default on both splits: "
        f"{', '.join(dominating) or 'none'}",
        *[f"note: {n}" for n in result.notes],
    ]
    text = "\n".join(lines)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = {"system": system_info(), "bars": bars, "explore": result.to_dict(),
           "report_split_per_candidate": {c.label: round(rep, 3) for c, rep in rows}}  # fmt: skip
    args.json.write_text(json.dumps(out, indent=2))
    if args.md:
        args.md.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
