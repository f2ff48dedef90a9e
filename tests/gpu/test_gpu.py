"""GPU runtimes end to end, and the ``doctor --gpu-check`` self-check.

Tests marked ``gpu`` build real TensorRT engines / ONNX Runtime GPU sessions and compare their
detections with ``ort:fp32`` on the CPU; without a GPU they skip with the probe's reason (and with
the runtime's own reason when a GPU is there but its packages are not). The self-check's no-GPU path,
its verdicts and its comparison machinery on the CPU runtimes run everywhere: tests/cli/test_doctor.py.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from core.cli import build_parser, cmd_doctor, doctor
from core.measure.metrics import agreement
from core.runtime.backends import BackendOptions, availability
from core.runtime.backends.gpu import probe_gpu
from core.variants import REFERENCE, Artefact, Precision, Runtime, Variant


def _doctor(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["doctor", *argv])


# ---------------------------------------------------------------------------------------------
# the real thing, on GPU machines


_gpu = probe_gpu()
needs_gpu = pytest.mark.skipif(not _gpu.ok, reason=f"no GPU: {_gpu.reason}")  # skips before fixtures run


def _require(runtime: Runtime) -> None:
    gpu = probe_gpu()
    if not gpu.ok:
        pytest.skip(f"no GPU: {gpu.reason}")
    status = availability(runtime)
    if not status:
        pytest.skip(f"{runtime.label} cannot run here: {status.reason}")


@pytest.fixture(scope="module")
def trt_int8_store(store):
    """The TensorRT-flavour INT8 artefact test_store.py also builds (16 calibration images)."""
    from core.model.convert import Int8Options
    from core.model.store import ModelStore

    return ModelStore(store.source, store.cache_root, calib_dir=store.calib_dir, int8=Int8Options(max_images=16))


@pytest.fixture(scope="module")
def reference_bus(store, bus_image):
    with store.open_detector(REFERENCE) as det:
        return det.detect(bus_image).detections


MAX_MEAN_DCONF = {Precision.FP32: 0.01, Precision.FP16: 0.02, Precision.INT8: 0.08}


def _check_on_bus(st, variant: Variant, bus_image, reference) -> None:
    with st.open_detector(variant) as det:
        det.warmup(2)
        result = det.detect(bus_image)
        description = det.backend.description
    a = agreement(reference, result.detections)
    ok, threshold = doctor.judge(variant.precision, a)
    assert ok, f"{variant}: recall {a.recall:.3f} < {threshold} vs ort:fp32 ({a.to_dict()})"
    assert a.mean_abs_dconf <= MAX_MEAN_DCONF[variant.precision], a.to_dict()
    assert result.timings.inference > 0
    if variant.runtime is Runtime.TRT:  # says what ran: TensorRT version, GPU
        assert "TensorRT" in description and probe_gpu().name in description


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("precision", [Precision.FP32, Precision.FP16, Precision.INT8])
def test_tensorrt_engine_detects_like_cpu_fp32(store, trt_int8_store, bus_image, reference_bus, precision):
    _require(Runtime.TRT)
    st = trt_int8_store if precision is Precision.INT8 else store
    _check_on_bus(st, Variant(Runtime.TRT, precision), bus_image, reference_bus)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize(
    "variant", ["ort-cuda:fp32", "ort-cuda:fp16", "ort-trt:fp32", "ort-trt:fp16", "ort-trt:int8"], ids=str
)
def test_onnxruntime_gpu_providers_detect_like_cpu_fp32(store, trt_int8_store, bus_image, reference_bus, variant):
    v = Variant.parse(variant)
    _require(v.runtime)
    st = trt_int8_store if v.precision is Precision.INT8 else store
    _check_on_bus(st, v, bus_image, reference_bus)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("variant", ["torch-cuda:fp32", "torch-cuda:fp16", "torch-cuda:bf16"])
def test_the_pytorch_baseline_on_the_gpu_detects_like_cpu_fp32(store, bus_image, reference_bus, variant):
    """The one GPU path a machine carrying only PyTorch with CUDA can verify."""
    v = Variant.parse(variant)
    _require(v.runtime)
    _check_on_bus(store, v, bus_image, reference_bus)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("variant", ["ort-cuda:fp32", "ort-trt:fp16"])
def test_a_gpu_session_says_where_its_nodes_ran_and_cannot_fall_back(store, variant):
    v = Variant.parse(variant)
    _require(v.runtime)
    with store.open_detector(v) as det:
        backend = det.backend
        assert backend._session._enable_fallback is False
        assert backend.placement and sum(backend.placement.values()) > 0
        assert backend.provider in backend.placement  # the GPU provider ran nodes
        assert "nodes on" in backend.description


@pytest.mark.gpu
@needs_gpu
def test_engine_cache_is_reused_and_a_damaged_engine_rebuilt(store, bus_image, tmp_path):
    from core.runtime.backends.tensorrt import TensorrtBackend

    _require(Runtime.TRT)
    onnx = store.artefact(Artefact.ONNX_FP32)
    options = BackendOptions(cache_dir=tmp_path)
    batch = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)
    steps: list[tuple[float, str]] = []
    with TensorrtBackend(options) as b:
        b.load(onnx, Precision.FP32, lambda f, m: steps.append((f, m)))
        first = b.infer(batch)
        assert "built" in b.description and "not cached" in b.description
    engines = list((tmp_path / "trt").glob("*.engine"))
    assert len(engines) == 1 and list((tmp_path / "trt").glob("timing-*.cache"))
    assert steps[-1][0] == 1.0 and any("TensorRT" in m for _, m in steps)
    assert [f for f, _ in steps] == sorted(f for f, _ in steps)  # progress only moves forward
    mtime = engines[0].stat().st_mtime_ns

    with TensorrtBackend(options) as b:
        b.load(onnx, Precision.FP32)
        assert "from the engine cache" in b.description
        np.testing.assert_allclose(b.infer(batch), first, rtol=1e-4, atol=1e-3)
    assert engines[0].stat().st_mtime_ns == mtime

    engines[0].write_bytes(engines[0].read_bytes()[:1000])  # truncated
    with TensorrtBackend(options) as b:
        b.load(onnx, Precision.FP32)
        assert "damaged" in b.description
        np.testing.assert_allclose(b.infer(batch), first, rtol=1e-4, atol=1e-3)


@pytest.mark.gpu
@needs_gpu
def test_one_engine_two_contexts_in_two_threads(store, tmp_path):
    from core.runtime.backends.tensorrt import backend as trt_backend

    _require(Runtime.TRT)
    onnx = store.artefact(Artefact.ONNX_FP16)
    options = BackendOptions(cache_dir=tmp_path)
    rng = np.random.default_rng(1)
    batches = [rng.random((1, 3, 640, 640), dtype=np.float32) for _ in range(4)]
    a, b = trt_backend.TensorrtBackend(options), trt_backend.TensorrtBackend(options)
    with a, b:
        a.load(onnx, Precision.FP16)
        b.load(onnx, Precision.FP16)
        shared = [e for e in trt_backend._SHARED.values() if e.users == 2]
        assert len(shared) == 1  # one engine in memory for both
        expected = [a.infer(x) for x in batches]
        results: dict[str, list[np.ndarray]] = {}

        def run(name: str, backend: trt_backend.TensorrtBackend) -> None:
            results[name] = [backend.infer(x) for x in batches for _ in range(5)][::5]

        threads = [threading.Thread(target=run, args=(n, be)) for n, be in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name in ("a", "b"):
            for got, want in zip(results[name], expected, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2)
    assert not [e for e in trt_backend._SHARED.values() if e.users <= 0]


@pytest.mark.gpu
@needs_gpu
def test_doctor_gpu_check_passes_on_this_gpu(yolov5n_pt, calib_dir, videos_dir, session_cache, capsys):
    args = _doctor(
        "--gpu-check",
        "--json",
        "--model",
        str(yolov5n_pt),
        "--calib",
        str(calib_dir),
        "--cache-dir",
        str(Path(session_cache) / "doctor"),
        "--video",
        str(videos_dir / "street_people_car_tokyo_360p.mp4"),
    )
    code = cmd_doctor(args)
    report = json.loads(capsys.readouterr().out)["gpu_check"]
    assert report["status"] in ("passed", "failed") and report["reference_boxes"] > 50
    failed = [v for v in report["variants"] if v["status"] in ("fail", "error")]
    assert code == 0 and not failed, failed


def test_the_acceptance_script_runs_anywhere_and_says_what_it_skipped(yolov5n_pt, calib_dir, tmp_path):
    """scripts/gpu-acceptance.sh on this machine: one JSON, every GPU runtime it could not check with its
    reason, exit 0 without a GPU (nothing to check). On a GPU machine the same run builds and checks them."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "acceptance.json"
    cmd = [sys.executable, str(root / "scripts" / "gpu_acceptance.py"), "--model", str(yolov5n_pt),
           "--calib", str(calib_dir), "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=os.environ | {"PYTHONPATH": str(root)})
    report = json.loads(out.read_text())
    runtimes = {r["runtime"]: r for r in report["runtimes"]}
    assert {"ort-cuda", "ort-trt", "trt", "torch-cuda"} <= set(runtimes)
    if probe_gpu().ok:
        assert done.returncode == (0 if report["passed"] else 1), done.stdout
        return
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["gpu_check"]["result"]["status"] == "nothing-to-check" and report["passed"]
    for runtime in ("ort-cuda", "ort-trt", "trt", "torch-cuda"):
        assert report["skipped"][runtime] == runtimes[runtime]["reason"] != ""
        assert f"skipped {runtime}: " in done.stdout
