"""``python -m core report``: the HTML report from the JSON that compare, bench, eval and video print."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.report.colours import VARIANT_COLOURS

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_report_from_the_four_json_outputs(
    yolov5n_pt, calib_dir, val_dir, videos_dir, bus_jpg, session_cache, tmp_path
):
    model = ["--model", str(yolov5n_pt), "--calib", str(calib_dir)]
    two = ["--variants", "ort:fp32,ort:int8"]
    runs = {
        "compare": ["compare", str(bus_jpg), *model, *two, "--runs", "5"],
        "bench": ["bench", *model, *two, "--warmup", "1", "--iterations", "10"],
        "eval": ["eval", *model, *two, "--data", str(val_dir), "--max-images", "8"],
        "video": ["video", str(videos_dir / "street_people_car_tokyo_360p.mp4"), *model, *two, "--max-frames", "6",
                  "--output", str(tmp_path / "side.mp4")],
    }  # fmt: skip
    files = []
    for name, args in runs.items():
        p = cli(*args, "--json", cache=session_cache)
        assert p.returncode == 0, (name, p.stderr)
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(p.stdout)
    out = tmp_path / "report.html"
    p = cli("report", *map(str, files), "--out", str(out), "--title", "Q4 decision", cache=session_cache)
    assert p.returncode == 0, p.stderr
    html = out.read_text()
    assert "<title>Q4 decision</title>" in html
    heads = re.findall(r"<h2>(.*?)</h2>", html)
    assert heads == ["Accuracy", "Benchmark", "Compare images", "Compare video"]  # the decision's numbers first
    assert "ort:int8 — " in html and "mAP50-95 points" in html and "8 images" in html
    assert "ort:int8 vs ort:fp32: " in html
    cells = re.findall(r"<td>(.*?)</td>", html)
    assert cells and not {"None", "nan", "NaN", "True", "False"} & set(cells)
    arrays = re.findall(r'"marker":\{"color":\[([^\]]*)\]', html)  # per-bar colours of the latency charts
    colours = {c for a in arrays for c in re.findall(r"#[0-9a-f]{6}", a)}
    assert {VARIANT_COLOURS["ort:fp32"], VARIANT_COLOURS["ort:int8"]} <= colours


def test_a_file_that_is_not_a_result_is_named(tmp_path, session_cache):
    bad = tmp_path / "notes.json"
    bad.write_text(json.dumps({"hello": 1}))
    p = cli("report", str(bad), "--out", str(tmp_path / "r.html"), cache=session_cache)
    assert p.returncode == 2 and "notes.json: not the --json output of compare, bench, profile, eval, video" in p.stderr
