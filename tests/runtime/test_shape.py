"""The rect input shape: YOLOv5 detect.py's minimal-padding letterbox, on every CPU runtime.

``detect_py_rect.json`` holds what the official ``detect.py --weights yolov5n.pt`` printed for bus.jpg and
zidane.jpg (its provenance inside): an external reference, recorded once, not this tool's own output.
"""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from core.errors import InputError
from core.measure.metrics import agreement
from core.runtime.geometry import rect_hw
from core.runtime.head import HeadGraphs, head_from_model, resize_by_scales
from core.runtime.processing import PostParams
from core.variants import CPU_VARIANTS, Shape, Variant
from tests.conftest import runnable

DETECT_PY = json.loads(Path(__file__).with_name("detect_py_rect.json").read_text())
DETECT_PY_PARAMS = PostParams(conf=0.25, iou=0.45, max_det=1000)  # detect.py's defaults


@pytest.mark.parametrize(
    ("h", "w", "want"),
    [
        (1080, 810, (640, 480)),  # bus.jpg: detect.py's "640x480"
        (720, 1280, (384, 640)),  # zidane.jpg and every 16:9 frame: "384x640"
        (360, 640, (384, 640)),  # the shared 360p clip
        (432, 768, (384, 640)),  # the shared parking-lot clip
        (640, 640, (640, 640)),  # square stays square
        (100, 4000, (32, 640)),  # a thin strip keeps one stride
    ],
)
def test_rect_input_is_detect_py_minimal_padding(h, w, want):
    assert rect_hw(h, w, 640) == want
    assert all(side % 32 == 0 for side in want)


@pytest.fixture(scope="module")
def rect_store(store):
    from dataclasses import replace

    return replace(store, shape=Shape.RECT)


@pytest.fixture(scope="module")
def rect_detectors(rect_store):
    from core.runtime import availability

    opened = {str(v): rect_store.open_detector(v) for v in CPU_VARIANTS if availability(v.runtime, v.precision)}
    yield opened
    for d in opened.values():
        d.close()


def _image(name: str) -> np.ndarray:
    from core.data.images import load_image
    from core.data.samples import sample_image

    return load_image(sample_image(name))


@pytest.mark.parametrize("image", ["bus.jpg", "zidane.jpg"])
@pytest.mark.parametrize("variant", ["torch:fp32", "ort:fp32", "ov:fp32"])
def test_rect_gives_detect_py_s_detections(rect_detectors, image, variant):
    """The PyTorch baseline is the user's PyTorch: detect.py on the .pt finds 5 objects on bus.jpg (4 persons and a
    bus), boxes within a pixel (detect.py rounds them), confidences within 0.001; ONNX Runtime and OpenVINO too."""
    want = DETECT_PY["images"][image]
    det = rect_detectors[variant]
    picture = _image(image)
    assert det.hw_for(picture.shape[:2]) == tuple(want["network_input_hw"])
    got = det.detect(picture, DETECT_PY_PARAMS).detections
    rows = sorted(zip(got.class_names, got.confidence, got.xyxy, strict=True), key=lambda r: -r[1])
    ref = sorted(((d["class"], d["confidence"], d["xyxy"]) for d in want["detections"]), key=lambda r: -r[1])
    assert [r[0] for r in rows] == [r[0] for r in ref]
    for (_, conf, box), (_, wconf, wbox) in zip(rows, ref, strict=True):
        assert conf == pytest.approx(wconf, abs=0.001)
        np.testing.assert_allclose(np.round(box), wbox, atol=1)


def test_square_still_finds_the_four_of_the_square_pipeline(detectors, bus_image):
    """The same model, square: 640x640 input, four objects (the bus-side person is the rect shape's fifth)."""
    got = detectors["ort:fp32"].detect(bus_image, DETECT_PY_PARAMS).detections
    assert detectors["ort:fp32"].hw_for(bus_image.shape[:2]) == (640, 640)
    assert sorted(got.class_names) == ["bus", "person", "person", "person"]


@pytest.mark.parametrize("variant", [str(v) for v in CPU_VARIANTS])
def test_every_cpu_variant_runs_rect_and_sees_what_fp32_sees(rect_detectors, variant):
    """Each CPU runtime x precision runs zidane.jpg at 384x640 (its FP16 and INT8 files, made for 640x640, too) and
    finds the two people FP32 finds."""
    det = runnable(rect_detectors, variant)
    picture = _image("zidane.jpg")
    raw = det.infer_raw(picture)
    assert raw.letterbox.pad_y == pytest.approx(12.0)  # 360 rows of picture in 384: 12 above, 12 below
    ref = rect_detectors["ort:fp32"].detect(picture).detections
    got = det.detect(picture).detections
    people = [i for i, n in enumerate(ref.class_names) if n == "person"]
    assert len(people) == 2
    assert agreement(ref, got).matched >= 2


def test_a_rect_batch_runs_each_shape_together_and_keeps_the_order(rect_detectors):
    det = rect_detectors["ort:fp32"]
    bus, zidane = _image("bus.jpg"), _image("zidane.jpg")
    one_by_one = [det.infer_raw(im) for im in (bus, zidane, bus)]
    batched = det.infer_raw_batch([bus, zidane, bus])
    for a, b in zip(one_by_one, batched, strict=True):
        assert a.letterbox == b.letterbox
        np.testing.assert_allclose(a.output, b.output, atol=1e-4)


def test_resize_by_scales_changes_nothing_at_the_file_s_own_size(store):
    """The Resizes rewritten to scale (what runs other sizes) give the very same outputs at 640x640."""
    import onnxruntime as ort

    proto = onnx.load(str(store.variant_artefact(Variant.parse("ort:int8"))))
    head = head_from_model(proto)
    scaled = resize_by_scales(proto)
    assert not [n for n in scaled.graph.node if n.op_type == "Resize" and len(n.input) > 3 and n.input[3]]
    x = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)
    graphs = HeadGraphs(proto, head)
    before = ort.InferenceSession(graphs.graph(), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    from core.runtime.head import cut_at_head

    after = ort.InferenceSession(cut_at_head(scaled, head), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_fixed_size_onnx_without_head_metadata_says_it_cannot_run_rect(store, tmp_path):
    """A user's own ONNX (no head metadata, fixed 640x640 input) runs square only, and rect says why."""
    from core.model.sources import resolve_model
    from core.model.store import ModelStore

    proto = onnx.load(str(store.fp32()))
    del proto.metadata_props[:]
    path = tmp_path / "theirs.onnx"
    onnx.save(proto, str(path))
    theirs = ModelStore(resolve_model(path), cache_root=tmp_path / "cache", shape=Shape.RECT)
    with pytest.raises(InputError, match="cannot run the rect shape: this ONNX file has a fixed input size"):
        theirs.open_detector(Variant.parse("ort:fp32"))
    square = ModelStore(resolve_model(path), cache_root=tmp_path / "cache")
    with square.open_detector(Variant.parse("ort:fp32")) as det:
        assert len(det.detect(_image("bus.jpg")).detections) == 4


def test_tensorrt_s_rect_model_is_the_cut_graph_with_dynamic_sides(store, tmp_path):
    """What TensorRT builds its rect engine from (one optimisation profile for every size), checked without a GPU:
    dynamic height and width, and at 384x640 the same head outputs as the CPU backends' static graph."""
    import onnxruntime as ort

    from core.runtime import BackendOptions
    from core.runtime.backends.tensorrt import TensorrtBackend
    from core.runtime.onnx_file import read_onnx

    fp16 = store.variant_artefact(Variant.parse("ort:fp16"))
    backend = TensorrtBackend(BackendOptions(cache_dir=tmp_path, shape=Shape.RECT))
    path, head = backend._rect_model(fp16)
    assert head is not None and path.parent == tmp_path / "rect"
    io = read_onnx(path)
    assert io.dynamic and io.input_shape[2:] == (-1, -1) and io.output_names == head.outputs
    x = np.random.default_rng(1).random((1, 3, 384, 640), dtype=np.float32)
    dynamic = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {io.input_name: x})
    static = HeadGraphs(onnx.load(str(fp16)), head).graph(1, (384, 640))
    want = ort.InferenceSession(static, providers=["CPUExecutionProvider"]).run(None, {io.input_name: x})
    for a, b in zip(dynamic, want, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), atol=1e-2)
