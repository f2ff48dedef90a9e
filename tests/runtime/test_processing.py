import numpy as np
import pytest

from core.errors import InputError
from core.runtime.geometry import letterbox
from core.runtime.processing import OutputLayout, PostParams, postprocess, preprocess


def _yolov5_raw(rows):
    """rows: (cx, cy, w, h, obj, class_id, class_score) in network pixels; 3 classes."""
    out = np.zeros((1, len(rows), 8), np.float32)
    for i, (cx, cy, w, h, obj, c, s) in enumerate(rows):
        out[0, i, :5] = [cx, cy, w, h, obj]
        out[0, i, 5 + c] = s
    return out


_, LB = letterbox(np.zeros((640, 640, 3), np.uint8), (640, 640))


def test_preprocess_is_nchw_float_in_unit_range():
    img = np.zeros((480, 640, 3), np.uint8)
    img[..., 0] = 255
    t, lb = preprocess(img, (640, 640))
    assert t.shape == (1, 3, 640, 640) and t.dtype == np.float32
    assert t[0, 0, 320, 320] == pytest.approx(1.0) and t[0, 1, 320, 320] == 0.0
    assert t[0, 0, 0, 0] == pytest.approx(114 / 255)  # padding rows at the top
    assert lb.pad_y == 80


def test_yolov5_layout_confidence_is_objectness_times_class_score():
    raw = _yolov5_raw([(100, 100, 20, 20, 0.9, 1, 0.5), (300, 300, 20, 20, 0.2, 0, 0.99)])
    d = postprocess(raw, OutputLayout.YOLOV5, LB, PostParams(conf=0.25), ("a", "b", "c"))
    assert len(d) == 1 and d.class_names == ["b"]
    assert d.confidence[0] == pytest.approx(0.45)
    np.testing.assert_allclose(d.xyxy[0], [90, 90, 110, 110])


def test_anchor_free_layout_is_decoded_transposed():
    raw = np.zeros((1, 4 + 3, 5), np.float32)
    raw[0, :4, 2] = [50, 60, 10, 20]
    raw[0, 4 + 2, 2] = 0.8
    d = postprocess(raw, OutputLayout.ANCHOR_FREE, LB, PostParams(), ("a", "b", "c"))
    assert d.class_names == ["c"] and d.confidence[0] == pytest.approx(0.8)
    np.testing.assert_allclose(d.xyxy[0], [45, 50, 55, 70])


def test_nms_is_class_aware_and_filters_apply():
    rows = [
        (100, 100, 40, 40, 1.0, 0, 0.9),
        (102, 100, 40, 40, 1.0, 0, 0.8),  # same class, overlaps: suppressed
        (100, 100, 40, 40, 1.0, 1, 0.7),  # other class, same place: kept
        (400, 400, 40, 40, 1.0, 2, 0.6),
    ]
    raw = _yolov5_raw(rows)
    d = postprocess(raw, OutputLayout.YOLOV5, LB, PostParams(), ("a", "b", "c"))
    assert sorted(d.class_names) == ["a", "b", "c"]
    assert postprocess(raw, OutputLayout.YOLOV5, LB, PostParams(agnostic=True)).class_id.tolist() == [0, 2]
    assert postprocess(raw, OutputLayout.YOLOV5, LB, PostParams(classes=(2,))).class_id.tolist() == [2]
    assert len(postprocess(raw, OutputLayout.YOLOV5, LB, PostParams(max_det=2))) == 2
    assert len(postprocess(raw, OutputLayout.YOLOV5, LB, PostParams(conf=0.95))) == 0


def test_multi_label_keeps_every_class_above_threshold():
    raw = _yolov5_raw([(100, 100, 40, 40, 1.0, 0, 0.9)])
    raw[0, 0, 5 + 1] = 0.5
    assert len(postprocess(raw, OutputLayout.YOLOV5, LB, PostParams())) == 1
    assert len(postprocess(raw, OutputLayout.YOLOV5, LB, PostParams(multi_label=True))) == 2


@pytest.mark.parametrize("kwargs", [{"conf": 1.5}, {"iou": -0.1}, {"max_det": 0}])
def test_bad_thresholds_are_refused(kwargs):
    with pytest.raises(InputError):
        PostParams(**kwargs)
