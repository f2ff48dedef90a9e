"""Video pipeline throughput vs the engine alone on the same frames (issues: dashboard, performance).

    .venv/bin/python bench/video_pipeline.py VIDEO --model yolov5n --calib DIR [--variants ort:fp32,ort:int8]

Engine only: every chosen detector's ``detect`` on every frame, frames already decoded in memory (no
decoding, drawing or encoding), at its fastest thread setting (a single variant spins between calls).
Pipeline: ``core.video.process_video`` on the file as the CLI and the app run it (sessions that do not
spin), writing the side-by-side H.264 MP4 and calling a no-op ``on_frame`` (as the dashboard does). Both run the same
frames, in alternating order over ``--rounds`` rounds so drift in machine load hits both; the ratio is
the median of each round's pipeline fps / engine fps.

Two cases: all chosen variants together (dashboard bar: >= 0.85) and the slowest chosen variant
alone (performance bar: >= 0.90). Prints markdown, writes JSON; exits 1 if a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_throughput import engine_only_throughput
from core.model import open_store
from core.runtime import BackendOptions, OrtOptions, PostParams, system_info
from core.variants import parse_variants
from core.video import PIPELINE_PRESET, iter_frames, probe, process_video

BARS = {"all chosen variants": 0.85, "slowest variant alone": 0.90}


def _ignore(update: object) -> None:
    return None


def measure(engine_dets, pipeline_dets, video: Path, frames, rounds: int, preset: str, workdir: Path) -> dict:
    params = PostParams()
    engine, pipeline, ratios = [], [], []
    out = workdir / "side_by_side.mp4"
    written = 0
    for r in range(rounds):
        order = ("engine", "pipeline") if r % 2 == 0 else ("pipeline", "engine")
        got: dict[str, float] = {}
        for what in order:
            if what == "engine":
                got[what] = engine_only_throughput(engine_dets, frames, params).fps
            else:
                run = process_video(
                    video, pipeline_dets, params, output=out, max_frames=len(frames), on_frame=_ignore, preset=preset
                )
                got[what] = run.fps_processed
                written = probe(out).frame_count
        engine.append(got["engine"])
        pipeline.append(got["pipeline"])
        ratios.append(got["pipeline"] / got["engine"])
    return {
        "variants": [str(d.variant) for d in pipeline_dets],
        "engine_fps": [round(x, 3) for x in engine],
        "pipeline_fps": [round(x, 3) for x in pipeline],
        "ratios": [round(x, 4) for x in ratios],
        "engine_fps_median": round(statistics.median(engine), 3),
        "pipeline_fps_median": round(statistics.median(pipeline), 3),
        "ratio_median": round(statistics.median(ratios), 4),
        "output_frames": written,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, help="calibration images (needed for int8 variants)")
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--variants", default="ort:fp32,ort:int8")
    ap.add_argument("--max-frames", type=int, default=None, help="default: the whole clip")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", default=PIPELINE_PRESET, help="x264 preset of the pipeline's encoder")
    ap.add_argument("--out", type=Path, default=Path("artifacts/video_pipeline.json"))
    args = ap.parse_args()

    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    variants = parse_variants(args.variants)

    def open_all(spin: bool) -> dict:
        return {v: store.open_detector(v, BackendOptions(ort=OrtOptions(spin=spin))) for v in variants}

    # The engine alone at its fastest: a variant run back to back spins its threads between calls; variants
    # that alternate do not (spinning idle sessions steal the busy one's cores). The pipeline as the CLI and
    # the app run it: never spinning, because decode and encode threads need the cores between calls.
    spinning, still = open_all(True), open_all(False)
    info = probe(args.video)
    frames = list(iter_frames(args.video, args.max_frames))
    for d in [*spinning.values(), *still.values()]:  # first calls allocate; keep them out of both measurements
        for f in frames[:5]:
            d.detect(f)

    first = engine_only_throughput(list(spinning.values()), frames[: min(60, len(frames))]).variant_fps
    slowest = min(variants, key=lambda v: first[str(v)])
    load_before = os.getloadavg()
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = list((still if len(variants) > 1 else spinning).values())
        cases["all chosen variants"] = measure(
            engine, list(still.values()), args.video, frames, args.rounds, args.preset, Path(tmp)
        )
        if len(variants) > 1:
            cases["slowest variant alone"] = measure(
                [spinning[slowest]], [still[slowest]], args.video, frames, args.rounds, args.preset, Path(tmp)
            )
        else:
            cases["slowest variant alone"] = cases["all chosen variants"]
    load_after = os.getloadavg()
    bars = {f"{c}: pipeline >= {bar:.2f} x engine": cases[c]["ratio_median"] >= bar for c, bar in BARS.items()}
    result = {
        "system": system_info(),
        "video": info.to_dict(),
        "frames": len(frames),
        "model": store.source.name,
        "preset": args.preset,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "cases": cases,
        "bars": bars,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    s = result["system"]
    print(f"{s['cpu']}, {s['cores_logical']} cores; {store.source.name}; {args.video.name}: {len(frames)} frames")
    print(f"{info.width}x{info.height} @ {info.fps:g} fps; x264 preset {args.preset}; {args.rounds} rounds")
    print(f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
    print("| case | variants | engine-only fps | pipeline fps | pipeline / engine | per round |")
    print("|---|---|---|---|---|---|")
    for case, c in cases.items():
        print(
            f"| {case} | {', '.join(c['variants'])} | {c['engine_fps_median']:.2f} | {c['pipeline_fps_median']:.2f} "
            f"| {c['ratio_median']:.3f} | {', '.join(f'{x:.3f}' for x in c['ratios'])} |"
        )
    print()
    for name, ok in bars.items():
        print(f"- [{'x' if ok else ' '}] {name}")
    print(f"\nJSON: {args.out}")
    for d in [*spinning.values(), *still.values()]:
        d.close()
    return 0 if all(bars.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
