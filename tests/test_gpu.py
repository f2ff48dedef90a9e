"""GPU runtimes end to end, and the ``doctor --gpu-check`` self-check.

Tests marked ``gpu`` build real TensorRT engines / ONNX Runtime GPU sessions and compare their
detections with ``ort:fp32`` on the CPU; without a GPU they skip with the probe's reason (and with
the runtime's own reason when a GPU is there but its packages are not). The rest run everywhere:
the self-check's no-GPU path, its verdicts, and its comparison machinery on the CPU runtimes.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from core import doctor
from core.backends import BackendOptions, availability
from core.backends.gpu import probe_gpu
from core.cli import build_parser, cmd_doctor
from core.errors import InputError
from core.metrics import Agreement, agreement
from core.variants import REFERENCE, Artefact, Precision, Runtime, Variant, parse_variants
from core.video import iter_frames


def _doctor(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["doctor", *argv])


# ---------------------------------------------------------------------------------------------
# doctor --gpu-check, everywhere


@pytest.mark.skipif(probe_gpu().ok, reason="a GPU is present: the no-GPU path is not what runs here")
def test_gpu_check_without_gpu_has_nothing_to_check_and_exits_0(capsys, tmp_path):
    # a model that does not exist: proves nothing is resolved, downloaded or built when nothing can run
    args = _doctor("--gpu-check", "--model", str(tmp_path / "absent.pt"), "--cache-dir", str(tmp_path))
    assert cmd_doctor(args) == 0
    out = capsys.readouterr().out
    assert "no GPU variant can run on this machine, so there is nothing to check" in out
    for runtime in ("ort-cuda", "ort-trt", "trt"):
        assert f"  {runtime} " in out.split("nothing to check")[1]
    assert probe_gpu().reason in out
    assert not list(tmp_path.iterdir())

    assert cmd_doctor(_doctor("--gpu-check", "--json", "--model", str(tmp_path / "absent.pt"))) == 0
    report = json.loads(capsys.readouterr().out)["gpu_check"]
    assert report["status"] == "nothing-to-check" and report["variants"] == []
    assert set(report["unavailable"]) == {"ort-cuda", "ort-trt", "trt"}
    assert report["recall_thresholds"] == {"fp32": 0.95, "fp16": 0.93, "int8": 0.8}


def test_plain_doctor_is_unchanged_by_the_new_options(capsys):
    assert cmd_doctor(_doctor()) == 0
    out = capsys.readouterr().out
    assert "[ok ] ort " in out and "GPU check" not in out


def _agreement(matched: int, missed: int) -> Agreement:
    return Agreement(matched, missed, 0, 0.01, 0.9)


@pytest.mark.parametrize(
    ("precision", "matched", "missed", "passed"),
    [
        (Precision.FP32, 96, 4, True),  # recall 0.96 >= 0.95
        (Precision.FP32, 94, 6, False),
        (Precision.FP16, 93, 7, True),
        (Precision.FP16, 92, 8, False),
        (Precision.INT8, 80, 20, True),
        (Precision.INT8, 79, 21, False),
        (Precision.FP32, 3, 1, True),  # one flipped box on a tiny set is tolerated
        (Precision.FP32, 3, 2, False),
        (Precision.INT8, 0, 0, True),  # nothing to find, nothing missed
    ],
)
def test_verdict_is_recall_against_the_precision_threshold(precision, matched, missed, passed):
    ok, threshold = doctor.judge(precision, _agreement(matched, missed))
    assert ok is passed and threshold == doctor.RECALL_THRESHOLDS[precision]


def test_check_machinery_on_cpu_variants(store, bus_image):
    """The comparison, verdict and table, run on real CPU runtimes (the GPU ones run the same code)."""
    from core.images import load_image
    from core.samples import sample_image
    from core.store import ModelStore

    images = [bus_image, load_image(sample_image("zidane.jpg"))]
    rows, boxes = doctor.check_variants(store, parse_variants("ort:fp16"), images)
    assert boxes >= 6  # bus: 4 people and the bus; zidane: 2 people and a tie
    (row,) = rows
    assert row.variant == "ort:fp16" and row.status == "pass" and row.agreement is not None
    assert row.agreement.recall >= 0.93 and row.agreement.mean_abs_dconf < 0.01
    assert row.inference_ms_p50 and row.inference_ms_p50 > 0 and "ONNX Runtime" in row.description

    uncalibrated = ModelStore(store.source, store.cache_root)
    rows, _ = doctor.check_variants(uncalibrated, parse_variants("ort:int8"), images[:1])
    assert rows[0].status == "skipped" and "--calib" in rows[0].message

    report = doctor.GpuCheckResult("passed", {"trt": "why not"}, rows, ["bus.jpg"], boxes, "yolov5n")
    assert json.loads(json.dumps(report.to_dict()))["variants"][0]["status"] == "skipped"


def test_clip_frames_are_decoded_with_pyav(videos_dir, tmp_path):
    # --video's frames come from the app's decoder, as the doctor reads them
    frames = list(iter_frames(videos_dir / "car-detection.mp4", max_frames=5))  # it has an audio track too
    assert len(frames) == 5 and all(f.shape == (432, 768, 3) and f.dtype == np.uint8 for f in frames)
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(InputError, match=r"clip.mp4: not a video file"):
        list(iter_frames(bad, max_frames=5))


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
    from core.convert import Int8Options
    from core.store import ModelStore

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
def test_engine_cache_is_reused_and_a_damaged_engine_rebuilt(store, bus_image, tmp_path):
    from core.backends.tensorrt import TensorrtBackend

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
    from core.backends.tensorrt import backend as trt_backend

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
