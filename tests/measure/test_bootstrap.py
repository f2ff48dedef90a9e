"""core.measure.bootstrap: the paired bootstrap interval of a mAP difference, from matches computed once."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.dataset import load_dataset
from core.data.images import load_image
from core.measure.accuracy import MapAccumulator
from core.measure.bootstrap import paired_delta, weighted_map
from core.runtime.processing import EVAL_PARAMS


@pytest.fixture(scope="module")
def accumulators(detectors, val_dir):
    dataset = load_dataset(val_dir, max_images=24)
    out = {}
    for v in ("ort:fp32", "ort:int8"):
        acc = MapAccumulator()
        for item in dataset.items:
            image = load_image(item.image)
            acc.add(detectors[v].detect(image, EVAL_PARAMS).detections, item.labels, image.shape[1], image.shape[0])
        out[v] = acc
    return out


def test_unit_weights_reproduce_ultralytics_map_exactly(accumulators):
    for acc in accumulators.values():
        ultra = acc.result(tuple(str(i) for i in range(80)))
        m50, m95 = weighted_map(acc.matches(), np.ones((1, acc.images)))
        assert m50[0] == pytest.approx(ultra.map50, abs=1e-6) and m95[0] == pytest.approx(ultra.map50_95, abs=1e-6)


def test_weights_are_resampling_images():
    """Weight 2 on an image is the image twice; weight 0 leaves it out (its labels too)."""
    acc = MapAccumulator()
    from core.runtime.detections import Detections

    names = ("a", "b")
    box = np.array([[10, 10, 50, 50]], np.float32)
    label = np.array([[0, 0.3, 0.3, 0.4, 0.4]], np.float32)  # the box above, normalised on a 100x100 image
    hit = Detections(box, np.array([0.9], np.float32), np.array([0]), names)
    miss = Detections(box + 40, np.array([0.8], np.float32), np.array([0]), names)
    acc.add(hit, label, 100, 100)
    acc.add(miss, label, 100, 100)
    m = acc.matches()
    m50, _ = weighted_map(m, np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]))
    assert m50[0] == m50[2] > 0.99 and m50[1] == 0.0  # (0.995: COCO's 101-point interpolation, as ultralytics)


def test_the_interval_is_seeded_brackets_the_reported_difference_and_is_zero_against_itself(accumulators):
    ref, var = accumulators["ort:fp32"].matches(), accumulators["ort:int8"].matches()
    reported = (-0.004, -0.006)
    d = paired_delta(ref, var, reported, resamples=200)
    assert d == paired_delta(ref, var, reported, resamples=200)  # seeded
    assert d.map50_95.value == pytest.approx(-0.4) and d.map50.value == pytest.approx(-0.6)
    assert d.map50_95.lo <= d.map50_95.value <= d.map50_95.hi and d.map50.lo <= d.map50.value <= d.map50.hi
    assert d.images == 24 and d.boxes == int(ref.target_cls.size) and d.resamples == 200
    same = paired_delta(ref, ref, (0.0, 0.0), resamples=50)
    assert (same.map50_95.lo, same.map50_95.hi) == (0.0, 0.0) and same.map50_95.holds_zero
