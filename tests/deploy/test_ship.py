"""``python -m core ship``: a bundle made from a compare run verifies on a machine that has only the runtime, numpy
and opencv (a fresh virtual environment, nothing of this project), a changed model file is caught, and TensorRT
variants ship the ONNX file and the engine build settings without a GPU."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENVS = Path(os.environ.get("YOLOLAB_TEST_VENVS", Path.home() / ".cache" / "yololab" / "test-venvs"))
UNREACHABLE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
               "No matching distribution found", "Could not find a version")  # fmt: skip


def cli(*args: str, cache: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(cache))
    p = subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    if check:
        assert p.returncode == 0, p.stderr[-2000:]
    return p


def bare_python(requirements: str) -> Path:
    """A virtual environment with only ``requirements`` (a requirements.txt text) from PyPI, made once per content
    and kept in ``$YOLOLAB_TEST_VENVS`` (default ~/.cache/yololab/test-venvs)."""
    key = hashlib.sha256(f"{sys.version}\n{requirements}".encode()).hexdigest()[:12]
    folder = VENVS / key
    python = folder / "bin" / "python"
    if (folder / ".complete").is_file():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True, timeout=300)
    (folder / "requirements.txt").write_text(requirements)
    p = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(folder / "requirements.txt")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if p.returncode != 0:
        if any(word in p.stdout + p.stderr for word in UNREACHABLE):
            pytest.skip(f"pip cannot install {requirements.split()} from an index here: {p.stderr.strip()[-300:]}")
        raise AssertionError(p.stderr[-2000:])
    (folder / ".complete").write_text(requirements)
    return python


def unpack(bundle: Path, where: Path) -> Path:
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in names), names
        assert len({n.split("/")[0] for n in names}) == 1  # one folder
        zf.extractall(where)
    return where / names[0].split("/")[0]


def verify(python: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    # a bare environment: nothing of this project on the path, run from the bundle's own folder
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "")}
    return subprocess.run([str(python), "verify.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_an_int8_bundle_from_a_compare_run_verifies_with_only_onnxruntime_numpy_and_opencv(
    yolov5n_pt, calib_dir, bus_jpg, session_cache, tmp_path
):
    zidane = bus_jpg.with_name("zidane.jpg")
    model = ["--model", str(yolov5n_pt), "--calib", str(calib_dir)]
    compare = cli("compare", str(bus_jpg), str(zidane), *model, "--variants", "ort:fp32,ort:int8", "--runs", "1",
                  "--json", cache=session_cache)  # fmt: skip
    result = json.loads(compare.stdout)
    int8 = [next(v for v in im["variants"] if v["variant"] == "ort:int8") for im in result["images"]]
    assert all(v["detections"] for v in int8)  # compare's JSON carries each variant's detections per image
    (tmp_path / "c.json").write_text(compare.stdout)
    bundle = tmp_path / "bundle.zip"
    ship = cli("ship", "--variant", "ort:int8", "--from", str(tmp_path / "c.json"), "--out", str(bundle), *model,
               "--json", cache=session_cache)  # fmt: skip
    shipped = json.loads(ship.stdout)
    assert shipped["kind"] == "ship" and "re-run here: the same" in shipped["rerun"]

    folder = unpack(bundle, tmp_path / "target")
    manifest = json.loads((folder / "bundle.json").read_text())
    # the recorded detections are the compare run's, on the images it ran (included, by content)
    assert [im["detections"] for im in manifest["images"]] == [v["detections"] for v in int8]
    assert [im["sha256"] for im in manifest["images"]] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (bus_jpg, zidane)
    ]
    assert manifest["model"]["source_file"].startswith("int8-cpu-")
    assert json.loads((folder / "decision.json").read_text())["reference"] == "ort:fp32"
    infer = (folder / "infer.py").read_text()
    assert "import core" not in infer and "from core" not in infer
    requirements = (folder / "requirements.txt").read_text()
    assert requirements.startswith("onnxruntime==")

    python = bare_python(requirements)
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    assert not {"openvino", "torch", "pillow", "onnx=="} & {w for w in ("openvino", "torch", "pillow", "onnx==")
                                                             if w in freeze.lower()}  # fmt: skip
    ok = verify(python, folder)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: 2 images" in ok.stdout

    # a changed model file: one line naming the file and its sha256, exit 1
    original = (folder / "model.onnx").read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    bad = verify(python, folder)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "model.onnx has sha256" in bad.stderr, bad.stderr

    # the recorded detections changed: verify finds the difference
    (folder / "model.onnx").write_bytes(original)
    manifest["images"][0]["detections"][0]["xyxy"][0] += 5.0
    (folder / "bundle.json").write_text(json.dumps(manifest))
    moved = verify(python, folder)
    assert moved.returncode == 1 and "not found" in moved.stdout, moved.stdout + moved.stderr


@pytest.mark.slow
def test_an_openvino_bundle_verifies_with_only_openvino_numpy_and_opencv(yolov5n_pt, session_cache, tmp_path):
    bundle = tmp_path / "ov.zip"
    cli("ship", "--variant", "ov:fp32", "--out", str(bundle), "--model", str(yolov5n_pt), cache=session_cache)
    folder = unpack(bundle, tmp_path / "target")
    manifest = json.loads((folder / "bundle.json").read_text())
    assert manifest["runtime"]["package"] == "openvino" and manifest["decode"]["kind"] == "head"
    assert sum(len(im["detections"]) for im in manifest["images"]) > 0
    requirements = (folder / "requirements.txt").read_text()
    assert requirements.startswith("openvino==")
    ok = verify(bare_python(requirements), folder)
    assert ok.returncode == 0, ok.stdout + ok.stderr


@pytest.mark.slow
def test_a_rect_bundle_runs_each_image_at_its_own_input(yolov5n_pt, session_cache, tmp_path):
    """--shape rect ships the graph with open height and width; infer.py pads each image only to the stride."""
    bundle = tmp_path / "rect.zip"
    cli("ship", "--variant", "ort:fp32", "--shape", "rect", "--out", str(bundle), "--model", str(yolov5n_pt),
        cache=session_cache)  # fmt: skip
    folder = unpack(bundle, tmp_path / "target")
    manifest = json.loads((folder / "bundle.json").read_text())
    assert manifest["input"]["shape"] == "rect"
    hws = {im["name"]: im["input_hw"] for im in manifest["images"]}
    assert hws["bus.jpg"] == [640, 480] and hws["zidane.jpg"] == [384, 640]
    ok = verify(Path(sys.executable), folder)  # this project's interpreter: same packages, but verify imports none
    assert ok.returncode == 0, ok.stdout + ok.stderr


@pytest.mark.slow
def test_a_tensorrt_variant_ships_its_onnx_file_and_build_settings_without_a_gpu(yolov5n_pt, session_cache, tmp_path):
    bundle = tmp_path / "trt.zip"
    cli("ship", "--variant", "trt:fp16", "--out", str(bundle), "--model", str(yolov5n_pt), cache=session_cache)
    folder = unpack(bundle, tmp_path / "target")
    manifest = json.loads((folder / "bundle.json").read_text())
    build = json.loads((folder / "build.json").read_text())
    assert build["precision"] == "fp16" and "--stronglyTyped" in build["trtexec"] and build["workspace_mb"] > 0
    # the FP16 ONNX file itself, as the TensorRT builder reads it: byte for byte the store's file
    assert manifest["model"]["source_file"].startswith("fp16-")
    assert manifest["model"]["sha256"] == manifest["model"]["source_sha256"]
    assert manifest["decode"]["kind"] == "graph"
    assert "not_recorded" in manifest or any(im["detections"] for im in manifest["images"])
    if "not_recorded" in manifest:  # no GPU here: nothing recorded, and verify.py says it cannot check
        p = verify(Path(sys.executable), folder)
        assert p.returncode == 2 and "cannot verify" in p.stderr, p.stderr


def test_ship_refuses_what_it_cannot_ship_in_one_line(yolov5n_pt, session_cache, tmp_path):
    p = cli("ship", "--variant", "torch:fp32", "--out", str(tmp_path / "t.zip"), "--model", str(yolov5n_pt),
            cache=session_cache, check=False)  # fmt: skip
    assert p.returncode == 2 and "ship takes ONNX Runtime, OpenVINO and TensorRT variants" in p.stderr
    assert p.stderr.strip().count("\n") == 0
    (tmp_path / "bench.json").write_text(json.dumps({"kind": "bench", "results": []}))
    p = cli("ship", "--variant", "ort:fp32", "--from", str(tmp_path / "bench.json"), "--out", str(tmp_path / "b.zip"),
            "--model", str(yolov5n_pt), cache=session_cache, check=False)  # fmt: skip
    assert p.returncode == 2 and "takes a compare --json result" in p.stderr and "bench" in p.stderr
    assert not (tmp_path / "b.zip").exists()


@pytest.mark.slow
def test_the_benchmark_decision_card_offers_the_bundle_of_the_chosen_variant(app_env):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "benchmark.py"), default_timeout=600)
    at.run()
    at.number_input(key="bench:warmup").set_value(1)
    at.number_input(key="bench:iters").set_value(3)
    at.button[0].click()
    at.run()
    assert not at.exception
    assert at.selectbox(key="bench:ship:variant").value == "ort:fp16"  # the first variant that is not the reference
    at.button(key="bench:ship:prepare").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("run here:" in c.value for c in at.caption)
    assert at.get("download_button")
