"""The real model on the real sample image: what a user would see first."""

import numpy as np
import pytest

from core.metrics import agreement
from core.processing import PostParams

# The official YOLOv5 pipeline on bus.jpg (ort:fp32, 640, conf 0.25, IoU 0.45), from the issue.
OFFICIAL_BUS = [
    ("bus", 0.508, [51, 235, 810, 781]),
    ("person", 0.814, [50, 399, 206, 898]),
    ("person", 0.791, [220, 408, 349, 864]),
    ("person", 0.608, [680, 379, 810, 873]),
]


def test_fp32_on_bus_matches_the_official_yolov5_pipeline(detectors, bus_image):
    res = detectors["ort:fp32"].detect(bus_image, PostParams(conf=0.25, iou=0.45))
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


@pytest.mark.parametrize(("variant", "max_dconf"), [("ort:fp16", 0.01), ("ort:int8", 0.1)])
def test_reduced_precision_finds_the_same_people_and_bus(detectors, bus_image, variant, max_dconf):
    ref = detectors["ort:fp32"].detect(bus_image).detections
    got = detectors[variant].detect(bus_image).detections
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
