"""The GPU install stands on its own: pip resolves requirements-gpu.txt to onnxruntime-gpu with the CUDA and
cuDNN libraries its providers load, compatible with torch's pins, and without the CPU onnxruntime beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _without_tensorrt(tmp_path: Path) -> Path:
    # tensorrt-cu13's libraries are an sdist that downloads from NVIDIA's own index when built, which this
    # machine cannot reach; everything else in the file is resolved as written
    for name in ("requirements-gpu.txt", "requirements-common.txt", "requirements-base.txt"):
        lines = (ROOT / name).read_text().splitlines()
        (tmp_path / name).write_text("\n".join(ln for ln in lines if not ln.startswith("tensorrt")) + "\n")
    return tmp_path / "requirements-gpu.txt"


def test_requirements_gpu_resolves_with_its_cuda_libraries_and_torchs_pins(tmp_path):
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
           "--report", str(report), "-r", str(_without_tensorrt(tmp_path))]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        if "ResolutionImpossible" not in done.stderr and any(
            word in done.stderr for word in ("Could not find a version", "NewConnectionError", "Network is unreachable")
        ):
            pytest.skip(f"the package registry cannot be reached: {done.stderr.strip().splitlines()[-1]}")
        pytest.fail(done.stderr[-3000:])
    plan = {i["metadata"]["name"].lower(): i for i in json.loads(report.read_text())["install"]}
    assert set(plan["onnxruntime-gpu"].get("requested_extras") or []) == {"cuda", "cudnn"}
    for library in ("nvidia-cudnn-cu13", "nvidia-cublas", "nvidia-cuda-runtime", "nvidia-cufft", "nvidia-curand"):
        assert library in plan, f"{library} missing: ORT's CUDA provider would depend on torch bringing it"
    assert "onnxruntime" not in plan  # the CPU wheel beside the GPU one hides the CUDA provider
    assert plan["torch"]["metadata"]["version"] == "2.14.1"
