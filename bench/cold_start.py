"""Dashboard cold start: from `streamlit run app.py` to the first detection on the sample image (issue: performance).

    .venv/bin/python bench/cold_start.py --model PT --calib DIR [--runs 3]

Before timing, the artefacts the default page needs are built into --cache-dir (the FP32 ONNX, and the
INT8 file: the page compares ort:fp32 with ort:int8 by default), so what is timed is a restart with a
warm cache, as a user sees it every time after the first. Each run:

1. Chromium (Debian's, via Playwright) is started first: a browser already open is not the app's cost;
2. t = 0: ``streamlit run app.py`` is started on a free loopback port;
3. server up: ``/_stcore/health`` answers; page: the "Compare images" title is shown;
4. first detection: the page shows its first "objects" count (the sample image went through every
   default variant: letterbox, inference, NMS, drawn).

Also reports which heavy modules the server process had imported by then (torch must not be: the FP32
ONNX is cached, nothing needs it). Prints markdown, writes JSON; medians over --runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._app_server import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402


def prepare(args: argparse.Namespace) -> dict:
    from core.model import open_store
    from core.variants import Artefact

    store = open_store(args.model, cache_dir=args.cache_dir, calib_dir=args.calib)
    return {a.value: str(store.artefact(a)) for a in (Artefact.ONNX_FP32, Artefact.ONNX_INT8_CPU)}


def _imported(pid: int) -> list[str]:
    """Heavy modules the server mapped: their shared libraries show in /proc/<pid>/maps."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    marks = {
        "torch": "libtorch_cpu",
        "onnxruntime": "onnxruntime_pybind11",
        "openvino": "libopenvino",
        "cv2": "/cv2/",
        "av": "/av/",
    }
    return [name for name, mark in marks.items() if mark in maps]


def one_run(args: argparse.Namespace, browser) -> dict:
    with app_server(args.model, args.calib, args.cache_dir) as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url)
        page.get_by_role("heading", name="Compare images").first.wait_for(timeout=120_000)
        t_page = time.perf_counter() - server.started
        page.locator("[data-testid='stMetricLabel']", has_text="objects").first.wait_for(timeout=300_000)
        t_first = time.perf_counter() - server.started
        heavy = _imported(server.process.pid)
        page.close()
    return {"server_up_s": server.up_s, "page_shown_s": t_page, "first_detection_s": t_first, "server_libraries": heavy}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a legacy YOLOv5 .pt")
    ap.add_argument("--calib", type=Path, required=True, help="INT8 calibration images (the page's default pair)")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "yololab-bench-cache")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "cold_start.json")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from core.runtime import system_info

    artefacts = prepare(args)
    runs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(args.runs):
            runs.append(one_run(args, browser))
        browser.close()
    keys = ("server_up_s", "page_shown_s", "first_detection_s")
    med = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    out = {
        "system": system_info(),
        "artefacts_cached": artefacts,
        "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
        "median": med,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"{out['system']['cpu']}, {out['system']['cores_logical']} cores; cache: {', '.join(artefacts)}\n")
    print("| run | server up s | page shown s | first detection s | native libraries loaded by then |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        print(
            f"| {i} | {r['server_up_s']:.2f} | {r['page_shown_s']:.2f} | {r['first_detection_s']:.2f} "
            f"| {', '.join(r['server_libraries'])} |"
        )
    print(f"| median | {med['server_up_s']:.2f} | {med['page_shown_s']:.2f} | {med['first_detection_s']:.2f} | |")
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
