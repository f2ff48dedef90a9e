"""core.runtime.head: the Detect head's box decode in numpy, on the candidate cells only."""

import numpy as np
import pytest

from core.runtime.head import YoloV5Head


def test_head_decode_keeps_the_candidates_in_the_graphs_order_and_arithmetic():
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
    assert YoloV5Head.from_json("") is None
    assert YoloV5Head.from_json('{"outputs": ["a"], "strides": [8], "anchors": [[1, 2]], "no": 85}') is None
    good = YoloV5Head(("a",), (8.0,), np.ones((1, 3, 2), np.float32), 85)
    back = YoloV5Head.from_json(good.to_json())
    assert back is not None and back.outputs == ("a",) and back.strides == (8.0,) and back.num_outputs == 85
    np.testing.assert_array_equal(back.anchors, good.anchors)
