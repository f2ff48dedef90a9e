import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.runtime.geometry import PAD_VALUE, Letterbox, batched_nms, box_iou, letterbox, nms, unletterbox


def test_letterbox_centres_and_pads_gray_like_yolov5():
    img = np.full((1080, 810, 3), 7, np.uint8)
    out, lb = letterbox(img, (640, 640))
    assert out.shape == (640, 640, 3)
    assert lb.ratio == pytest.approx(640 / 1080)
    # 810 * 0.5926 = 480 wide -> 80 px gray on each side
    assert lb.pad_x == pytest.approx(80) and lb.pad_y == 0
    assert (out[:, :80] == PAD_VALUE).all() and (out[:, -80:] == PAD_VALUE).all()
    assert (out[:, 80:560] == 7).all()


def test_unletterbox_clips_to_the_source_image():
    _, lb = letterbox(np.zeros((100, 200, 3), np.uint8), (64, 64))
    boxes = np.array([[-10, -10, 70, 70]], np.float32)
    out = unletterbox(boxes, lb)
    assert out.min() >= 0 and out[0, 2] <= 200 and out[0, 3] <= 100


def _boxes(n: int, rng: np.random.Generator, size: float = 100) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert box_iou(a, b)[0] == pytest.approx([1.0, 1 / 3, 0.0], abs=1e-6)
    assert box_iou(a, np.zeros((0, 4), np.float32)).shape == (1, 0)


def test_nms_matches_a_brute_force_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        boxes, scores = _boxes(60, rng), rng.random(60).astype(np.float32)
        keep = nms(boxes, scores, 0.5)
        # brute force: walk by score, keep a box if it overlaps no kept box by more than 0.5
        expected: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            if all(box_iou(boxes[i : i + 1], boxes[j : j + 1])[0, 0] <= 0.5 for j in expected):
                expected.append(int(i))
        assert keep.tolist() == expected


def test_batched_nms_never_suppresses_across_classes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5, max_keep=1).tolist() == [0]


sizes = st.integers(min_value=1, max_value=2000)


def to_input_coords(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """What letterbox does to a box: source pixels -> network-input pixels (unletterbox's inverse)."""
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = out[:, [0, 2]] * lb.ratio + lb.pad_x
    out[:, [1, 3]] = out[:, [1, 3]] * lb.ratio + lb.pad_y
    return out


@settings(max_examples=60, deadline=None)
@given(h=sizes, w=sizes, target=st.sampled_from([320, 416, 640]))
def test_letterbox_round_trips_coordinates(h, w, target):
    _, lb = letterbox(np.zeros((h, w, 3), np.uint8), (target, target))
    rng = np.random.default_rng(h * 7919 + w)
    pts = rng.uniform(0, 1, (8, 4)) * [w, h, w, h]
    boxes = np.concatenate([np.minimum(pts[:, :2], pts[:, 2:]), np.maximum(pts[:, :2], pts[:, 2:])], 1)
    back = unletterbox(to_input_coords(boxes.astype(np.float32), lb), lb)
    np.testing.assert_allclose(back, boxes, atol=1e-2 * max(1.0, max(h, w) / target))
    # the whole image lands inside the network input
    corners = to_input_coords(np.array([[0, 0, w, h]], np.float32), lb)
    assert corners.min() >= -0.5 and corners[0, 2] <= target + 0.5 and corners[0, 3] <= target + 0.5


box_arrays = arrays(np.float32, st.tuples(st.integers(0, 40), st.just(4)), elements=st.floats(0, 500, width=32))


@settings(max_examples=80, deadline=None)
@given(raw=box_arrays, seed=st.integers(0, 2**16), iou=st.floats(0.1, 0.9))
def test_nms_output_is_a_subset_with_no_same_class_pair_above_threshold(raw, seed, iou):
    boxes = np.concatenate([np.minimum(raw[:, :2], raw[:, 2:]), np.maximum(raw[:, :2], raw[:, 2:])], 1)
    rng = np.random.default_rng(seed)
    scores = rng.random(len(boxes)).astype(np.float32)
    classes = rng.integers(0, 3, len(boxes))
    keep = batched_nms(boxes, scores, classes, iou)
    assert len(set(keep.tolist())) == len(keep) and all(0 <= k < len(boxes) for k in keep)
    assert np.all(np.diff(scores[keep]) <= 0)  # best first
    ious = box_iou(boxes[keep], boxes[keep])
    same = classes[keep][:, None] == classes[keep][None, :]
    np.fill_diagonal(same, False)
    assert not np.any(ious[same] > iou + 1e-6)


@settings(max_examples=60, deadline=None)
@given(h=sizes, w=sizes, seed=st.integers(0, 2**16), n=st.integers(0, 300), spread=st.floats(0.5, 3.0))
def test_detections_always_land_inside_the_image(h, w, seed, n, spread):
    """Whatever the network says (boxes reaching past the input, huge, tiny), what the user gets is inside the
    picture, with positive area, on both output layouts."""
    from core.runtime.processing import OutputLayout, PostParams, postprocess

    _, lb = letterbox(np.zeros((h, w, 3), np.uint8), (320, 320))
    rng = np.random.default_rng(seed)
    xywh = np.concatenate([rng.uniform(-160, 480, (n, 2)), rng.uniform(0.5, 320 * spread, (n, 2))], 1)
    scores = rng.uniform(0, 1, (n, 4))
    yolov5 = np.concatenate([xywh, rng.uniform(0, 1, (n, 1)), scores], 1).astype(np.float32)[None]
    anchor_free = np.concatenate([xywh, scores], 1).T.astype(np.float32)[None]
    for raw, layout in ((yolov5, OutputLayout.YOLOV5), (anchor_free, OutputLayout.ANCHOR_FREE)):
        d = postprocess(raw, layout, lb, PostParams(conf=0.1, iou=0.5), ("a", "b", "c", "d"))
        assert (d.xyxy >= 0).all() and (d.xyxy[:, [0, 2]] <= w).all() and (d.xyxy[:, [1, 3]] <= h).all()
        assert (d.xyxy[:, 2] >= d.xyxy[:, 0]).all() and (d.xyxy[:, 3] >= d.xyxy[:, 1]).all()
        assert ((d.confidence > 0.1) & (d.confidence <= 1)).all() and len(d) <= 300
