"""``python -m core doctor`` everywhere: what can run here, and the GPU self-check's no-GPU path, verdicts and
comparison machinery (run on the CPU runtimes; on GPU machines tests/gpu/test_gpu.py runs it for real)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from core.cli import build_parser, cmd_doctor, doctor
from core.errors import InputError
from core.measure.metrics import Agreement
from core.runtime.backends.gpu import probe_gpu
from core.variants import Precision, parse_variants
from core.video import iter_frames


def _doctor(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["doctor", *argv])


@pytest.mark.skipif(probe_gpu().ok, reason="a GPU is present: the no-GPU path is not what runs here")
def test_gpu_check_without_gpu_has_nothing_to_check_and_exits_0(capsys, tmp_path):
    # a model that does not exist: proves nothing is resolved, downloaded or built when nothing can run
    args = _doctor("--gpu-check", "--model", str(tmp_path / "absent.pt"), "--cache-dir", str(tmp_path))
    assert cmd_doctor(args) == 0
    out = capsys.readouterr().out
    assert "no GPU variant can run on this machine, so there is nothing to check" in out
    for runtime in ("ort-cuda", "ort-trt", "trt", "torch-cuda"):
        assert f"  {runtime} " in out.split("nothing to check")[1]
    assert probe_gpu().reason in out
    assert not list(tmp_path.iterdir())

    assert cmd_doctor(_doctor("--gpu-check", "--json", "--model", str(tmp_path / "absent.pt"))) == 0
    report = json.loads(capsys.readouterr().out)["gpu_check"]
    assert report["status"] == "nothing-to-check" and report["variants"] == []
    assert set(report["unavailable"]) == {"ort-cuda", "ort-trt", "trt", "torch-cuda"}
    assert report["recall_thresholds"] == {"fp32": 0.95, "fp16": 0.93, "bf16": 0.93, "int8": 0.8}


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


@pytest.mark.parametrize(
    ("extra", "passed"),
    [(0, True), (1, True), (4, True), (6, False), (100, False)],  # precision 100/104 = 0.962, 100/106 = 0.943
)
def test_a_variant_that_adds_boxes_of_its_own_fails_too(extra, passed):
    ok, _ = doctor.judge(Precision.FP32, Agreement(100, 0, extra, 0.01, 0.9))
    assert ok is passed


def test_a_gpu_no_runtime_can_use_fails_the_check(capsys, tmp_path):
    """What the driver would report on a GPU machine whose venv lacks the GPU packages: exit 1, with reasons."""
    from core.runtime.backends.gpu import GpuInfo

    if doctor.gpu_variants()[0]:
        pytest.skip("a GPU runtime is available here: the check has something to run")
    report = doctor.gpu_check(lambda: pytest.fail("nothing may be built"), gpu=GpuInfo(True, name="NVIDIA H200"))
    assert report.status == "no-gpu-runtime" and report.exit_code == 1
    doctor.print_gpu_check(report)
    out = capsys.readouterr().out
    assert "GPU check FAILED: there is a GPU (NVIDIA H200) but no GPU runtime can use it" in out
    assert all(f"  {runtime} " in out for runtime in ("ort-cuda", "ort-trt", "trt"))


class _OneVariantBreaks:
    """The real store, except that one variant's session is fed the wrong type: a real ONNX Runtime error."""

    def __init__(self, store, broken: str) -> None:
        self._store, self._broken = store, broken

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def open_detector(self, variant):
        det = self._store.open_detector(variant)
        if str(variant) == self._broken:
            # float64 where the model takes float32: ONNX Runtime's own InvalidArgument, from its C++ core
            det.backend._run = lambda session, outputs, feeds: session.run(
                outputs, {k: v.astype(np.float64) for k, v in feeds.items()}
            )
        return det


def test_every_variant_gets_its_row_when_one_raises_onnx_runtimes_own_error(store, bus_image):
    rows, _ = doctor.check_variants(
        _OneVariantBreaks(store, "ort:fp16"), parse_variants("ort:fp16,ort:int8"), [bus_image]
    )
    broken, fine = rows
    assert broken.variant == "ort:fp16" and broken.status == "error" and broken.failed
    assert broken.message.startswith("onnxruntime.") and "InvalidArgument" in broken.message  # ORT's type
    assert "double" in broken.message  # and ORT's own text
    assert fine.variant == "ort:int8" and fine.status == "pass"


def test_check_machinery_on_cpu_variants(store, bus_image):
    """The comparison, verdict and table, run on real CPU runtimes (the GPU ones run the same code)."""
    from core.data.images import load_image
    from core.data.samples import sample_image
    from core.model.store import ModelStore

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
