import numpy as np
import pytest

from core.errors import InputError
from core.geometry import letterbox
from core.processing import OutputLayout, PostParams, postprocess, preprocess


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


def test_head_decode_keeps_the_candidates_in_the_graphs_order_and_arithmetic():
    from core.head import YoloV5Head

    # one level, 2x3 cells, 2 anchors, 1 class: channels per anchor = x, y, w, h, obj, cls
    head = YoloV5Head(("p3",), (8.0,), np.array([[[10, 13], [16, 30]]], np.float32), 6)
    logits = np.full((1, 12, 2, 3), -9.0, np.float32)
    logits[0, 6 + 4, 1, 2] = 2.0  # anchor 1, row 1, column 2: objectness sigmoid(2) = 0.881
    logits[0, 4, 0, 1] = 0.0  # anchor 0, row 0, column 1: objectness 0.5
    logits[0, 6:10, 1, 2] = [0.0, 0.0, 0.0, 0.0]  # sigmoid 0.5 for x, y, w, h
    rows = head.decode([logits], min_conf=0.3)
    assert rows.shape == (1, 2, 6)
    first, second = rows[0]
    assert first[4] == pytest.approx(0.5) and second[4] == pytest.approx(1 / (1 + np.exp(-2.0)))
    # (2 * 0.5 - 0.5 + grid) * stride and (2 * 0.5) ** 2 * anchor, as YOLOv5's Detect
    np.testing.assert_allclose(second[:4], [(0.5 + 2) * 8, (0.5 + 1) * 8, 16, 30], rtol=1e-6)
    assert head.decode([logits], min_conf=0.6).shape == (1, 1, 6)
    assert head.decode([logits], min_conf=0.0).shape == (1, 12, 6)  # every cell
    assert head.decode([logits], min_conf=0.95).shape == (1, 0, 6)


def test_head_metadata_that_does_not_parse_means_no_head():
    from core.head import YoloV5Head

    assert YoloV5Head.from_json("") is None
    assert YoloV5Head.from_json('{"outputs": ["a"], "strides": [8], "anchors": [[1, 2]], "no": 85}') is None
    good = YoloV5Head(("a",), (8.0,), np.ones((1, 3, 2), np.float32), 85)
    back = YoloV5Head.from_json(good.to_json())
    assert back is not None and back.outputs == ("a",) and back.strides == (8.0,) and back.num_outputs == 85
    np.testing.assert_array_equal(back.anchors, good.anchors)
