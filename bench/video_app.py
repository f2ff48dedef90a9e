"""The video page under a real browser: throughput vs the engine alone, and server memory over a whole clip.

    .venv/bin/python bench/video_app.py --model PT --calib DIR --clip CLIP [--variants ort:fp32,ort:int8]
        [--rounds 3] [--loop-to 1000]

Each round:
1. starts `streamlit run app.py` on loopback, drives Debian's Chromium with Playwright: upload the clip,
   Start, wait for the result video; reads the page's "N frames at X fps processed" and its server memory
   (RSS before the first frame, after 30 frames, at the end), and the CPU Chromium used meanwhile;
2. with the server stopped, runs the same variants on the same frames with nothing else
   (bench/_engine_throughput.py, also once before the first round).
The ratio of a round is its app fps over the mean of the engine-only runs before and after it; the bar is
a median ratio >= 0.85. Chromium runs on the same cores as the server here, unlike in real use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._app_server import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402

_HEADLESS = """
import json, os, re, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(os.path.join(sys.argv[1], "pages", "compare_video.py"), default_timeout=3600)
at.run()
wanted = sys.argv[3].split(",")
for box in at.checkbox:
    if box.label in ("ort:fp32", "ort:fp16", "ort:int8") and box.value != (box.label in wanted):
        box.set_value(box.label in wanted)
at.run()
at.file_uploader[0].set_value((os.path.basename(sys.argv[2]), open(sys.argv[2], "rb").read(), "video/mp4"))
at.run()
next(b for b in at.button if b.label == "Start").click()
at.run()
print(json.dumps([h.value for h in at.subheader] + [c.value for c in at.caption]))
"""


def run_headless(args: argparse.Namespace, cache: Path) -> dict:
    """The same page driven by Streamlit's AppTest in a separate process: the page's own work (polling,
    preview JPEGs, figures) without a browser rendering it on the same cores."""
    env = dict(
        os.environ, YOLOLAB_MODEL=str(args.model), YOLOLAB_CALIB_DIR=str(args.calib), YOLOLAB_CACHE_DIR=str(cache)
    )
    cmd = [sys.executable, "-c", _HEADLESS, str(ROOT), str(args.clip), args.variants]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    text = "\n".join(json.loads(out.strip().splitlines()[-1]))
    return _page_figures(text) | {"browser_cpu_share": 0.0}


def _page_figures(text: str) -> dict:
    m = re.search(r"(\d+) frames at ([\d.]+) fps processed", text)
    mem = re.search(r"RSS\): (\d+) MB at start, (\d+) MB after \d+ frames .*?, (\d+) MB at the end", text)
    if not m or not mem:
        raise SystemExit(f"could not read the result from the page:\n{text[:2000]}")
    return {
        "frames": int(m.group(1)),
        "app_fps": float(m.group(2)),
        "rss_before_mb": float(mem.group(1)),  # the page's own: variants loaded, no frame run yet
        "rss_warm_mb": float(mem.group(2)),  # after the first 30 frames: the runtimes' buffers are allocated
        "rss_end_mb": float(mem.group(3)),
    }


def run_in_browser(args: argparse.Namespace, cache: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with app_server(args.model, args.calib, cache) as server:
        url = server.url
        proc = psutil.Process(server.process.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
            page.goto(f"{url}/compare_video")
            page.get_by_text("Compare video").first.wait_for(timeout=300_000)
            wanted = args.variants.split(",")
            for v in ("ort:fp32", "ort:fp16", "ort:int8"):  # tick exactly the variants asked for
                box = page.get_by_label(v, exact=True)
                if box.is_checked() != (v in wanted):
                    box.click()
                    page.wait_for_timeout(1000)
            page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(args.clip))
            page.wait_for_timeout(2000)
            rss_before = proc.memory_info().rss / 2**20
            browsers = [c for c in psutil.process_iter(["name"]) if "chrom" in (c.info["name"] or "")]
            cpu0 = {c.pid: sum(c.cpu_times()[:2]) for c in browsers}
            srv0 = sum(proc.cpu_times()[:2])
            t0 = time.perf_counter()
            page.get_by_role("button", name="Start").click()
            page.locator("video").first.wait_for(timeout=3_600_000)
            wall = time.perf_counter() - t0
            rss_after = proc.memory_info().rss / 2**20
            browser_cpu = 0.0
            for c in browsers:
                with contextlib.suppress(psutil.Error):
                    browser_cpu += sum(c.cpu_times()[:2]) - cpu0[c.pid]
            server_cpu = sum(proc.cpu_times()[:2]) - srv0
            text = page.inner_text("[data-testid='stMain']")
            browser.close()
    return _page_figures(text) | {
        "rss_before_click_mb": rss_before,  # before the variants were loaded
        "rss_after_mb": rss_after,
        "browser_cpu_share": browser_cpu / wall,  # cores' worth of CPU the browser used during the run
        "server_cpu_share": server_cpu / wall,
    }


def engine_alone(args: argparse.Namespace, cache: Path, frames: int | None) -> dict:
    from bench._engine_throughput import engine_only_throughput
    from core.model import open_store
    from core.runtime import BackendOptions
    from core.variants import parse_variants
    from core.video import iter_frames

    store = open_store(args.model, cache_dir=cache, calib_dir=args.calib)
    variants = parse_variants(args.variants)
    # the same session settings the page uses for variants that alternate frame by frame
    dets = [store.open_detector(v, BackendOptions.for_turns(len(variants) > 1)) for v in variants]
    for d in dets:
        d.warmup(3)
    clip = list(iter_frames(args.clip, max_frames=frames))
    result = engine_only_throughput(dets, clip)
    for d in dets:
        d.close()
    return {"engine_fps": result.fps, "variant_fps": result.variant_fps}


def looped(clip: Path, frames: int, dest: Path) -> Path:
    """``clip`` played forwards, backwards, forwards... up to ``frames`` frames (a long run from a short clip)."""
    from core.video import H264Writer, iter_frames, probe

    source = list(iter_frames(clip))
    info = probe(clip)
    period = max(2 * len(source) - 2, 1)
    with H264Writer(dest, info.frame_rate, info.width, info.height, preset="ultrafast") as writer:
        for i in range(frames):
            k = i % period
            writer.write(source[k if k < len(source) else period - k])
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--clip", type=Path, required=True)
    ap.add_argument("--variants", default="ort:fp32,ort:int8")
    ap.add_argument("--rounds", type=int, default=3, help="app runs, each between two engine-only runs")
    ap.add_argument(
        "--client",
        choices=["browser", "apptest"],
        default="browser",
        help="drive the page with Chromium (default), or with Streamlit's AppTest: no browser on these cores",
    )
    ap.add_argument("--loop-to", type=int, help="play the clip forwards and backwards up to this many frames first")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "yololab-bench-cache")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "video_app.json")
    args = ap.parse_args()
    if args.loop_to:
        args.clip = looped(args.clip, args.loop_to, Path(tempfile.mkdtemp()) / f"{args.clip.stem}-{args.loop_to}.mp4")
    # The machine's speed drifts by ±10 % over minutes: the engine alone is measured before and after each
    # app run, and each round's ratio is the app's fps over the mean of the two around it.
    engines = [engine_alone(args, args.cache_dir, None)]
    apps = []
    for _ in range(args.rounds):
        apps.append(
            run_headless(args, args.cache_dir) if args.client == "apptest" else run_in_browser(args, args.cache_dir)
        )
        engines.append(engine_alone(args, args.cache_dir, None))
    ratios = [a["app_fps"] / statistics.mean([e0["engine_fps"], e1["engine_fps"]])
              for a, e0, e1 in zip(apps, engines, engines[1:], strict=False)]  # fmt: skip
    last = apps[-1]
    out = {
        "variants": args.variants,
        "client": args.client,
        "clip": str(args.clip),
        "frames": last["frames"],
        "app_runs": apps,
        "engine_runs": engines,
        "ratios": ratios,
        "ratio": statistics.median(ratios),
        "app_fps_median": statistics.median(a["app_fps"] for a in apps),
        "engine_fps_median": statistics.median(e["engine_fps"] for e in engines),
        "rss_growth_after_warmup_mb": [a["rss_end_mb"] - a["rss_warm_mb"] for a in apps],
        "browser_cpu_share": [a["browser_cpu_share"] for a in apps],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"{args.clip.name}: {out['frames']} frames, {args.variants}, {args.rounds} rounds, client {args.client}\n")
    print("| round | app fps | engine fps before / after | ratio | server RSS start → 30 frames → end (MB) | browser |")
    print("|---|---|---|---|---|---|")
    for i, (a, r) in enumerate(zip(apps, ratios, strict=True)):
        print(
            f"| {i + 1} | {a['app_fps']:.2f} | {engines[i]['engine_fps']:.2f} / {engines[i + 1]['engine_fps']:.2f} "
            f"| {r:.1%} | {a['rss_before_mb']:.0f} → {a['rss_warm_mb']:.0f} → {a['rss_end_mb']:.0f} "
            f"| {a['browser_cpu_share']:.2f} cores |"
        )
    print(f"\nmedian ratio {out['ratio']:.1%} (bar: 85 %); JSON: {args.out}")
    return 0 if out["ratio"] >= 0.85 else 1


if __name__ == "__main__":
    sys.exit(main())
