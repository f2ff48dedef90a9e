"""The real model on the real sample image: what a user would see first."""

import numpy as np
import pytest

from core.measure.metrics import agreement
from core.runtime.processing import PostParams
from core.variants import Variant
from tests.conftest import runnable

# The official YOLOv5 pipeline on bus.jpg (ort:fp32, 640, conf 0.25, IoU 0.45), from the issue.
OFFICIAL_BUS = [
    ("bus", 0.508, [51, 235, 810, 781]),
    ("person", 0.814, [50, 399, 206, 898]),
    ("person", 0.791, [220, 408, 349, 864]),
    ("person", 0.608, [680, 379, 810, 873]),
]


@pytest.mark.parametrize("variant", ["ort:fp32", "ov:fp32", "torch:fp32"])
def test_fp32_on_bus_matches_the_official_yolov5_pipeline(detectors, bus_image, variant):
    """ONNX Runtime, OpenVINO and the PyTorch baseline (the checkpoint itself) all give the official four."""
    res = detectors[variant].detect(bus_image, PostParams(conf=0.25, iou=0.45))
    got = sorted(
        zip(res.detections.class_names, res.detections.confidence, res.detections.xyxy, strict=True),
        key=lambda r: -r[1],
    )
    want = sorted(OFFICIAL_BUS, key=lambda r: -r[1])
    assert [g[0] for g in got] == [w[0] for w in want]
    for (_, conf, box), (_, wconf, wbox) in zip(got, want, strict=True):
        assert conf == pytest.approx(wconf, abs=0.01)
        np.testing.assert_allclose(box, wbox, atol=3)
    t = res.timings
    assert t.preprocess > 0 and t.inference > 0 and t.postprocess > 0


def test_openvino_fp32_boxes_are_onnx_runtime_s_within_a_pixel(detectors, bus_image):
    ref = detectors["ort:fp32"].detect(bus_image).detections
    got = detectors["ov:fp32"].detect(bus_image).detections
    assert list(got.class_names) == list(ref.class_names)
    np.testing.assert_allclose(got.xyxy, ref.xyxy, atol=1.0)
    np.testing.assert_allclose(got.confidence, ref.confidence, atol=2e-3)


@pytest.mark.parametrize(
    ("variant", "max_dconf"),
    [("ort:fp16", 0.01), ("ort:int8", 0.1), ("ov:bf16", 0.03), ("ov:int8", 0.1), ("torch:bf16", 0.03)],
)
def test_reduced_precision_finds_the_same_people_and_bus(detectors, bus_image, variant, max_dconf):
    ref = detectors["ort:fp32"].detect(bus_image).detections
    got = runnable(detectors, variant).detect(bus_image).detections
    a = agreement(ref, got)
    assert a.missed == 0 and a.matched == len(ref)
    assert a.mean_abs_dconf < max_dconf


def test_post_processing_reruns_from_the_raw_output(detectors, bus_image):
    det = detectors["ort:fp32"]
    raw = det.infer_raw(bus_image)
    loose, _ = det.postprocess(raw, PostParams(conf=0.1))
    strict, _ = det.postprocess(raw, PostParams(conf=0.6))
    only_people, _ = det.postprocess(raw, PostParams(conf=0.25, classes=(0,)))
    assert len(loose) > 4 > len(strict) >= 1
    assert set(only_people.class_names) == {"person"} and len(only_people) == 3


def test_images_of_any_shape_give_boxes_inside_the_image(detectors, bus_image):
    det = detectors["ort:fp32"]
    for img in (bus_image[:, :300], bus_image[::4, ::4], np.ascontiguousarray(bus_image.transpose(1, 0, 2))):
        d = det.detect(img, PostParams(conf=0.05)).detections
        h, w = img.shape[:2]
        assert len(d) and (d.xyxy >= 0).all() and (d.xyxy[:, [0, 2]] <= w).all() and (d.xyxy[:, [1, 3]] <= h).all()


def test_compacted_raw_output_gives_the_same_detections_for_higher_thresholds(detectors, bus_image):
    det = detectors["ort:fp32"]
    raw = det.infer_raw(bus_image)
    small = det.compact(raw, 0.01)
    assert small.nbytes < raw.nbytes / 10
    for conf in (0.01, 0.25, 0.6):
        full, _ = det.postprocess(raw, PostParams(conf=conf))
        compact, _ = det.postprocess(small, PostParams(conf=conf))
        np.testing.assert_array_equal(full.xyxy, compact.xyxy)
        np.testing.assert_array_equal(full.class_id, compact.class_id)


def _same_detections(a, b, max_dconf=1e-4):
    """Same boxes as sets (ties in confidence may come out in another order)."""
    agree = agreement(a, b)
    assert len(a) == len(b) and agree.matched == len(a) and agree.missed == agree.extra == 0
    assert agree.mean_abs_dconf < max_dconf and (len(a) == 0 or agree.mean_iou > 0.999)


@pytest.mark.parametrize("variant", ["ort:fp32", "ort:int8"])
def test_the_numpy_box_decode_gives_what_the_whole_graph_gives(store, detectors, bus_image, variant):
    import onnxruntime as ort

    from core.runtime.detector import RawOutput
    from core.runtime.processing import EVAL_PARAMS, preprocess

    det = detectors[variant]
    assert det.head is not None and "box decode in numpy" in det.backend.description
    whole_graph = store.path_for(Variant.parse(variant).spec.artefact)  # the file, with its decode
    whole = ort.InferenceSession(str(whole_graph), providers=["CPUExecutionProvider"])
    tensor, lb = preprocess(bus_image, det.input_hw)
    full = whole.run(None, {whole.get_inputs()[0].name: tensor})[0]
    every_row = det.infer_raw(bus_image).output  # min_conf 0: all 25200 rows, in the graph's order
    assert every_row.shape == full.shape
    np.testing.assert_allclose(every_row, full, rtol=1e-4, atol=2e-3)
    for params in (PostParams(conf=0.25), EVAL_PARAMS):
        candidates = det.infer_raw(bus_image, params.conf).output
        passing = full[:, full[0, :, 4] > params.conf]
        assert 0 < candidates.shape[1] < full.shape[1]  # only the cells that can pass the threshold ...
        assert candidates.shape[1] >= passing.shape[1]  # ... and every one of them, in the graph's order
        kept = candidates[:, candidates[0, :, 4] > params.conf]
        np.testing.assert_allclose(kept, passing, rtol=1e-4, atol=2e-3)
    # At 0.25 the detections are the same. (At val.py's 0.001, INT8 scores come in quantized steps and
    # obj x cls products tie; which tied box NMS keeps then depends on the sigmoid's last bit.)
    params = PostParams(conf=0.25)
    _same_detections(
        det.postprocess(RawOutput(full, lb, 0, 0), params)[0],
        det.postprocess(det.infer_raw(bus_image, params.conf), params)[0],
    )


@pytest.mark.parametrize("variant", ["ort:int8", "ov:int8"])
def test_a_batch_gives_each_image_its_own_detections(detectors, bus_image, variant):
    det = detectors[variant]
    assert det.max_batch is None  # the cut graph takes any batch
    images = [bus_image, np.ascontiguousarray(bus_image[::2, ::3]), np.ascontiguousarray(bus_image[:, :400])]
    batched = det.detect_batch(images)
    assert len(batched) == 3
    for image, got in zip(images, batched, strict=True):
        _same_detections(det.detect(image).detections, got.detections, max_dconf=1e-3)
        assert got.timings.inference > 0


def test_the_pytorch_baseline_runs_the_checkpoint_and_only_a_yolov5_checkpoint(detectors, store, tmp_path):
    from core.errors import InputError
    from core.model.sources import resolve_model
    from core.model.store import NO_BASELINE, ModelStore
    from core.variants import Artefact

    baseline = detectors["torch:fp32"]
    assert "PyTorch (CPU)" in baseline.backend.description and "fused" in baseline.backend.description
    assert store.artefact(Artefact.CHECKPOINT) == store.source.path  # nothing converted: the user's .pt
    onnx_only = ModelStore(resolve_model(store.artefact(Artefact.ONNX_FP32)), cache_root=tmp_path)
    assert onnx_only.missing_input(Variant.parse("torch:fp32")) == NO_BASELINE
    with pytest.raises(InputError, match="PyTorch baseline"):
        onnx_only.open_detector(Variant.parse("torch:fp32"))
