import numpy as np
import pytest

from core.measure.metrics import LatencyStats, agreement, agreement_over
from core.runtime.detections import Detections


def _dets(boxes, conf, cls):
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(conf, np.float32), np.array(cls), ("a", "b"))


def test_latency_percentiles():
    s = LatencyStats.from_samples(list(range(1, 101)))
    assert s.p50 == pytest.approx(50.5) and s.p90 == pytest.approx(90.1) and s.min == 1 and s.max == 100
    assert s.fps == pytest.approx(1000 / 50.5)
    assert LatencyStats.from_samples([]).count == 0


def test_agreement_counts_matched_missed_extra_and_confidence_drift():
    ref = _dets([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], [0.9, 0.8, 0.7], [0, 0, 1])
    cand = _dets([[0, 0, 10, 11], [20, 20, 30, 30], [80, 80, 90, 90]], [0.85, 0.6, 0.5], [0, 1, 1])
    a = agreement(ref, cand)
    # box 1 matches; box 2 is the wrong class (missed + extra); box 3 missed; the far box is extra
    assert (a.matched, a.missed, a.extra) == (1, 2, 2)
    assert a.mean_abs_dconf == pytest.approx(0.05, abs=1e-6)
    assert a.recall == pytest.approx(1 / 3)


def test_agreement_over_images_sums_counts():
    ref = _dets([[0, 0, 10, 10]], [0.9], [0])
    empty = Detections.empty(("a", "b"))
    a = agreement_over([ref, ref, empty], [ref, empty, ref])
    assert (a.matched, a.missed, a.extra) == (1, 1, 1)
    with pytest.raises(ValueError, match="2 reference results but 1"):
        agreement_over([ref, ref], [ref])


def test_detections_validate_their_shapes():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        Detections(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="must both have shape"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), np.zeros(2, np.int64))


def test_median_interval_is_distribution_free_and_narrows_with_runs():
    from core.measure.metrics import median_interval

    assert median_interval([5.0, 1.0, 3.0, 2.0, 4.0]) == (1.0, 5.0)  # 5 runs: the whole range
    lo, hi = median_interval(list(range(100)))
    assert 38 <= lo < 49.5 < hi <= 61  # ~±1 sd of the median's rank (sqrt(100)/2 = 5) times 1.96


def test_speedup_says_no_measurable_difference_when_the_intervals_allow_none():
    from core.measure.metrics import LatencySpread, Speedup

    fp32 = LatencySpread.from_samples([50.0, 51.0, 49.0, 52.0, 50.5])
    int8 = LatencySpread.from_samples([40.0, 41.0, 40.5, 39.5, 41.5])
    noisy = LatencySpread.from_samples([35.0, 70.0, 48.0, 52.0, 50.0])
    fast = Speedup.of(fp32, int8)
    assert fast.measurable and fast.value == pytest.approx(50.5 / 40.5) and fast.lo < fast.value < fast.hi
    assert fast.words().startswith("1.25x (") and fast.words().endswith("— faster")
    assert not Speedup.of(fp32, noisy).measurable
    assert Speedup.of(fp32, noisy).words().startswith("no measurable difference")
    assert Speedup.of(int8, fp32).words("ort:fp32").startswith("0.80x (")  # the ratio and its interval, then:
    assert Speedup.of(int8, fp32).words("ort:fp32").endswith("— slower than ort:fp32")
    assert fp32.fps == pytest.approx(1000 / 50.5)
