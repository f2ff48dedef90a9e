"""The video page under a real browser: throughput vs the engine alone, and server memory over a whole clip.

    .venv/bin/python bench/video_app.py --model PT --calib DIR --clip CLIP [--variants ort:fp32,ort:int8]
        [--loop-to 1000]

1. starts `streamlit run app.py` on loopback, drives Debian's Chromium with Playwright: upload the clip,
   Start, wait for the result video; reads the page's "N frames at X fps processed";
2. samples the server's RSS (psutil) just before Start and after the run;
3. with the server stopped, runs the same variants on the same frames with nothing else
   (core.video.engine_only_throughput) and reports app fps / engine fps (the bar: >= 0.85).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._app_server import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402


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
    m = re.search(r"(\d+) frames at ([\d.]+) fps processed", text)
    mem = re.search(r"RSS\): (\d+) MB at start, (\d+) MB after \d+ frames .*?, (\d+) MB at the end", text)
    if not m or not mem:
        raise SystemExit(f"could not read the result from the page:\n{text[:2000]}")
    return {
        "frames": int(m.group(1)),
        "app_fps": float(m.group(2)),
        "rss_before_click_mb": rss_before,  # before the variants were loaded
        "rss_after_mb": rss_after,
        "rss_before_mb": float(mem.group(1)),  # the page's own: variants loaded, no frame run yet
        "rss_warm_mb": float(mem.group(2)),  # after the first 30 frames: the runtimes' buffers are allocated
        "rss_end_mb": float(mem.group(3)),
        "browser_cpu_share": browser_cpu / wall,  # cores' worth of CPU the browser used during the run
        "server_cpu_share": server_cpu / wall,
    }


def engine_alone(args: argparse.Namespace, cache: Path, frames: int) -> dict:
    from core.backends import BackendOptions
    from core.sources import resolve_model
    from core.store import ModelStore
    from core.variants import parse_variants
    from core.video import engine_only_throughput, iter_frames

    store = ModelStore(resolve_model(args.model), cache_root=cache, calib_dir=args.calib)
    variants = parse_variants(args.variants)
    # the same session settings the page uses for variants that alternate frame by frame
    dets = [store.open_detector(v, BackendOptions(spin=len(variants) == 1)) for v in variants]
    for d in dets:
        d.warmup(3)
    clip = list(iter_frames(args.clip, max_frames=frames))
    result = engine_only_throughput(dets, clip)
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
    ap.add_argument("--loop-to", type=int, help="play the clip forwards and backwards up to this many frames first")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "yololab-bench-cache")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "video_app.json")
    args = ap.parse_args()
    if args.loop_to:
        args.clip = looped(args.clip, args.loop_to, Path(tempfile.mkdtemp()) / f"{args.clip.stem}-{args.loop_to}.mp4")
    app = run_in_browser(args, args.cache_dir)
    engine = engine_alone(args, args.cache_dir, app["frames"])
    out = {**app, **engine, "ratio": app["app_fps"] / engine["engine_fps"], "variants": args.variants}
    out["rss_growth_mb"] = out["rss_end_mb"] - out["rss_before_mb"]
    out["rss_growth_after_warmup_mb"] = out["rss_end_mb"] - out["rss_warm_mb"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print("| clip | frames | app fps | engine-only fps | ratio | server RSS start → 30 frames → end (MB) | browser |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.clip.name} | {out['frames']} | {out['app_fps']:.2f} | {out['engine_fps']:.2f} | {out['ratio']:.1%} "
        f"| {out['rss_before_mb']:.0f} → {out['rss_warm_mb']:.0f} → {out['rss_end_mb']:.0f} "
        f"({out['rss_growth_after_warmup_mb']:+.0f} after warm-up) | {out['browser_cpu_share']:.2f} cores |"
    )
    return 0 if out["ratio"] >= 0.85 else 1


if __name__ == "__main__":
    sys.exit(main())
