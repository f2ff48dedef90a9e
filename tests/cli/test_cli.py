"""The CLI contract that scripts and the app depend on, run as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_detect_json_contract(yolov5n_pt, bus_jpg, session_cache, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    p = run("detect", str(bus_jpg), str(bad), "--model", str(yolov5n_pt), "--json", "--save", str(tmp_path / "out"),
            cache=session_cache)  # fmt: skip
    assert p.returncode == 1, p.stderr  # one image failed; the other still has its results
    out = json.loads(p.stdout)
    assert out["variant"] == "ort:fp32"
    ok, failed = out["results"]
    assert "not an image" in failed["error"]
    assert sorted(d["class_name"] for d in ok["detections"]) == ["bus", "person", "person", "person"]
    det = ok["detections"][0]
    assert set(det) == {"class_id", "class_name", "confidence", "xyxy"} and len(det["xyxy"]) == 4
    assert set(ok["timings_ms"]) == {"preprocess", "inference", "postprocess"}
    assert (tmp_path / "out" / "bus.jpg").stat().st_size > 10_000


def test_bench_json_contract(yolov5n_pt, calib_dir, session_cache):
    p = run("bench", "--model", str(yolov5n_pt), "--variants", "ort:fp32,ort:int8", "--calib", str(calib_dir),
            "--warmup", "1", "--iterations", "5", "--json", cache=session_cache)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["system"]["cores_logical"] >= 1 and "CPUExecutionProvider" in out["system"]["execution_providers"]
    assert [v["variant"] for v in out["variants"]] == ["ort:fp32", "ort:int8"]
    for v in out["variants"]:
        lat = v["latency_ms"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] and v["fps"] > 0
        assert set(v["stages_ms"]) == {"preprocess", "inference", "postprocess"}


def test_eval_json_contract(yolov5n_pt, val_dir, session_cache):
    p = run("eval", "--model", str(yolov5n_pt), "--data", str(val_dir), "--variants", "ort:fp16",
            "--max-images", "6", "--json", cache=session_cache)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    (v,) = out["variants"]
    assert v["variant"] == "ort:fp16" and v["images"] == 6 and 0 < v["map50_95"] <= v["map50"] <= 1
    assert v["agreement_vs_fp32"]["matched"] > 0 and "p50" in v["latency_ms"]
    d = v["delta_vs_reference"]
    assert set(d) >= {"map50_95_points", "map50_points", "images", "boxes"} and d["images"] == 6
    for key in ("map50_95_points", "map50_points"):
        lo, hi = d[key]["ci95"]
        assert lo <= d[key]["value"] <= hi


def test_convert_prints_the_artefact_path(yolov5n_pt, session_cache):
    p = run("convert", "--model", str(yolov5n_pt), "--to", "fp16", cache=session_cache)
    assert p.returncode == 0, p.stderr
    path = Path(p.stdout.strip())
    assert path.is_file() and path.suffix == ".onnx" and str(session_cache) in str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["detect", "x.jpg", "--model", "nope.pt"], "model 'nope.pt' not found"),
        (["bench", "--model", "{pt}", "--variants", "ort:fp64"], "unknown variant 'ort:fp64'"),
        (["bench", "--model", "{pt}", "--variants", "trt:fp16"], "trt:fp16 cannot run here"),
        (["explore", "--model", "{pt}", "--data", "/nonexistent"], "calibration images of your own: pass --calib"),
        (["eval", "--model", "{pt}", "--data", "/nonexistent"], "dataset folder /nonexistent does not exist"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message, yolov5n_pt, session_cache):
    p = run(*[a.replace("{pt}", str(yolov5n_pt)) for a in args], cache=session_cache)
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and "it/s" not in ln and "‰" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_video_json_contract_and_playable_output(yolov5n_pt, videos_dir, session_cache, tmp_path):
    import av

    out_mp4, out_csv = tmp_path / "side.mp4", tmp_path / "lat.csv"
    p = run("video", str(videos_dir / "street_people_car_tokyo_360p.mp4"), "--model", str(yolov5n_pt),
            "--variants", "ort:fp32,ort:fp16", "--output", str(out_mp4), "--max-frames", "6", "--csv", str(out_csv),
            "--json", cache=session_cache)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["frames"] == 6 and out["fps_processed"] > 0
    assert [v["variant"] for v in out["variants"]] == ["ort:fp32", "ort:fp16"]
    assert all(v["latency_ms"]["p50"] > 0 for v in out["variants"])
    with av.open(str(out_mp4)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.width == 2 * 640
        assert sum(1 for _ in c.decode(video=0)) == 6
    assert len(out_csv.read_text().splitlines()) == 1 + 6 * 2


def test_compare_times_at_least_five_runs_by_default():
    from core.cli import build_parser

    args = build_parser().parse_args(["compare", "a.jpg", "--model", "yolov5n"])
    assert args.runs >= 5 and args.warmup >= 1 and args.reference == "ort:fp32"


def test_drift_json_ranks_blocks_and_refuses_a_float_variant(yolov5n_pt, calib_dir, session_cache):
    p = run("drift", "--model", str(yolov5n_pt), "--calib", str(calib_dir), "--images", "1", "--json",
            cache=session_cache)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["variant"] == "ort:int8" and out["images"] == 1 and out["images_from"] == str(calib_dir)
    worst = [b["worst_db"] for b in out["blocks"]]
    assert worst == sorted(worst) and {b["block"] for b in out["blocks"]} >= {"model.2", "model.9", "model.23"}
    p = run("drift", "--model", str(yolov5n_pt), "--variant", "ort:fp16", "--calib", str(calib_dir),
            cache=session_cache)  # fmt: skip
    assert p.returncode != 0 and "is not quantized" in p.stderr


def test_compare_works_offline_with_no_model_and_no_calibration_folder(bus_jpg, tmp_path):
    """A fresh machine with no network: the bundled yolov5n, INT8 calibrated on the bundled pictures (and said)."""
    env = dict(
        os.environ,
        YOLOLAB_CACHE_DIR=str(tmp_path / "cache"),
        YOLOLAB_MODELS_DIR=str(tmp_path / "models"),
        YOLOLAB_WEIGHTS_URL="http://127.0.0.1:9/",
    )
    p = subprocess.run([sys.executable, "-m", "core", "compare", str(bus_jpg), "--runs", "1", "--json"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["model"] == "yolov5n"
    (image,) = out["images"]
    found = {v["variant"]: len(v["detections"]) for v in image["variants"]}
    assert set(found) == {"ort:fp32", "ort:int8"} and found["ort:fp32"] >= 4 and found["ort:int8"] >= 3
    assert "INT8 calibrated on the 5 bundled pictures" in p.stderr


def test_shape_rect_runs_detect_py_s_inputs_and_every_result_names_it(
    yolov5n_pt, bus_jpg, videos_dir, session_cache, tmp_path
):
    """--shape rect: bus.jpg at 480x640 with the PyTorch baseline finds detect.py's five; a 16:9 clip runs 640x384;
    the JSON and the text both say which shape ran."""
    p = run("detect", str(bus_jpg), "--model", str(yolov5n_pt), "--variant", "torch:fp32", "--shape", "rect",
            "--json", cache=session_cache)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    (res,) = out["results"]
    assert out["shape"] == "rect" and res["input_hw"] == [640, 480] and len(res["detections"]) == 5
    p = run("video", str(videos_dir / "street_people_car_tokyo_360p.mp4"), "--model", str(yolov5n_pt),
            "--variants", "ort:fp32", "--max-frames", "4", "--shape", "rect", "--output", str(tmp_path / "o.mp4"),
            cache=session_cache)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "4 frames (rect 640x384)" in p.stdout
