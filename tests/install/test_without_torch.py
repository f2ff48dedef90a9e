"""An install for .onnx models only (requirements-onnx.txt: no torch, torchvision or ultralytics) works.

Simulated for real: a Python that cannot find those packages at all (this venv's site-packages without
them, and ``-S`` so nothing else is searched). Detection, comparison (OpenVINO too) and benchmarks run on an ONNX file;
mAP, which uses ultralytics' matching, says what to install; torch is never imported.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = ("torch", "torchvision", "ultralytics", "functorch", "torchgen")


@pytest.fixture(scope="module")
def no_torch_path(tmp_path_factory) -> Path:
    farm = tmp_path_factory.mktemp("site-packages-without-torch")
    for entry in Path(site.getsitepackages()[0]).iterdir():
        if entry.name.split("-")[0].split(".")[0] not in LEFT_OUT:
            (farm / entry.name).symlink_to(entry)
    return farm


def _core(farm: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": f"{farm}{os.pathsep}{ROOT}"}
    code = "import runpy, sys; sys.argv = ['core', *sys.argv[1:]]; runpy.run_module('core', run_name='__main__')"
    wrapped = f"{code}\nassert 'torch' not in sys.modules, 'torch was imported'"
    return subprocess.run([sys.executable, "-S", "-c", wrapped, *argv], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)  # fmt: skip


def test_the_simulation_really_lacks_torch(no_torch_path):
    env = os.environ | {"PYTHONPATH": str(no_torch_path)}
    done = subprocess.run([sys.executable, "-S", "-c", "import torch"], capture_output=True, text=True, env=env)
    assert done.returncode != 0 and "No module named 'torch'" in done.stderr


def test_onnx_models_run_without_torch_and_map_says_what_it_needs(no_torch_path, store, val_dir, tmp_path):
    from core.variants import Artefact

    model = str(store.artefact(Artefact.ONNX_FP32))
    picture = str(val_dir / "images" / "000000000139.jpg")
    cache = ["--cache-dir", str(tmp_path)]
    detect = _core(no_torch_path, "detect", picture, "--model", model, "--json", *cache)
    assert detect.returncode == 0, detect.stderr
    compare = _core(no_torch_path, "compare", picture, "--model", model, "--variants", "ort:fp32,ort:fp16,ov:fp32",
                    "--runs", "2", *cache)  # fmt: skip
    assert compare.returncode == 0 and "ov:fp32" in compare.stdout, compare.stderr  # OpenVINO is in this install
    bench = _core(no_torch_path, "bench", "--model", model, "--variants", "ort:fp32", "--iterations", "3", *cache)
    assert bench.returncode == 0 and "ort:fp32" in bench.stdout, bench.stderr  # timed on the project's picture
    doctor = _core(no_torch_path, "doctor")
    assert doctor.returncode == 0 and "torch is not installed" in doctor.stdout, doctor.stdout + doctor.stderr
    evaluation = _core(
        no_torch_path,
        "eval",
        "--model",
        model,
        "--data",
        str(val_dir),
        "--max-images",
        "4",
        "--variants",
        "ort:fp32",
        *cache,
    )
    assert evaluation.returncode != 0
    assert "mAP needs torch and ultralytics" in evaluation.stderr and "requirements.txt" in evaluation.stderr


def test_the_dashboard_starts_without_torch_on_an_onnx_model(no_torch_path, store, tmp_path):
    from core.variants import Artefact

    code = (
        "import sys\nfrom streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=300)\nat.run()\n"
        "assert not at.exception, at.exception\nassert not at.error, [e.value for e in at.error]\n"
        "print(at.title[0].value, len(at.get('imgs')) or len(at.get('image')))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = os.environ | {
        "PYTHONPATH": f"{no_torch_path}{os.pathsep}{ROOT}",
        "YOLOLAB_MODEL": str(store.artefact(Artefact.ONNX_FP32)),
        "YOLOLAB_CACHE_DIR": str(tmp_path),
    }
    env.pop("YOLOLAB_CALIB_DIR", None)
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Compare images")
