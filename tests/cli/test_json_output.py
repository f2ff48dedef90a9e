"""Every command's ``--json``: JSON on stdout and nothing else, with its ``kind``, in the shape it had
before the engine moved into rooms (``json_shapes.json``: key names and value types, recorded from the
pre-move CLI on the same inputs, lists by their first item), plus the machine block (``system``, with the CPU's
instruction sets) every result carries since OpenVINO and BF16 made the answer depend on them, and the input
``shape`` policy (with ``input_hw`` where one input size ran: each detected image, a video clip).

The report reads a file's kind from ``"kind"``; a script reading the other keys keeps working.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.runtime.cpu import cpu_features

ROOT = Path(__file__).resolve().parents[2]
SHAPES = json.loads((Path(__file__).with_name("json_shapes.json")).read_text())


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "None" if value is None else type(value).__name__


def same_shape(got: Any, want: Any) -> bool:
    """``got`` has ``want``'s keys and types; an empty list or a None on either side matches anything (the
    inputs decide whether a list is empty or a value missing), ints stand for floats (JSON drops '.0')."""
    if want in ("None", []) or got in ("None", []):
        return True
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same_shape(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and same_shape(got[0], want[0])
    return got == want or {got, want} == {"int", "float"}


def run_json(*args: str, cache: Path) -> dict[str, Any]:
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(cache))
    p = subprocess.run(
        [sys.executable, "-m", "core", *args, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)  # the whole of stdout: nothing else may be printed there


@pytest.mark.slow
def test_every_command_prints_its_kind_and_the_shape_it_had(
    yolov5n_pt, bus_jpg, calib_dir, val_dir, videos_dir, session_cache, tmp_path
):
    model = ["--model", str(yolov5n_pt), "--calib", str(calib_dir)]
    video = videos_dir / "car-detection.mp4"
    small_search = ["--max-images", "8", "--blocks", "1", "--images", "2", "--no-save"]
    runs = {
        "detect": ["detect", str(bus_jpg), *model],
        "compare": ["compare", str(bus_jpg), *model, "--variants", "ort:fp32,ort:int8", "--runs", "1"],
        "bench": ["bench", *model, "--variants", "ort:fp32,ort:int8", "--warmup", "1", "--iterations", "3"],
        "eval": ["eval", *model, "--data", str(val_dir), "--variants", "ort:fp32,ort:int8", "--max-images", "6"],
        "video": ["video", str(video), *model, "--max-frames", "3", "--output", str(tmp_path / "side.mp4")],
        "drift": ["drift", *model, "--images", "1"],
        "doctor": ["doctor"],
        "explore": ["explore", *model, "--data", str(val_dir), *small_search],
    }
    assert set(runs) == set(SHAPES)
    for kind, args in runs.items():
        out = run_json(*args, cache=session_cache)
        assert next(iter(out)) == "kind" and out.pop("kind") == kind
        assert same_shape(shape(out), SHAPES[kind]), (kind, shape(out), SHAPES[kind])
        assert out["system"]["cpu_features"] == cpu_features().names and out["system"]["cpu_summary"]


def test_the_report_reads_the_kind_a_file_names(tmp_path):
    from core.report import load_results

    doc = {"kind": "bench", "model": "m", "variants": []}  # no shape to guess from: only the kind says it
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    assert load_results([path]) == [("bench", doc)]
