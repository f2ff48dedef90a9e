"""core.measure.bench: warm-up, timed iterations, percentiles, and the one table the page, CLI and CSV show."""

import pytest

from core.measure.bench import bench_table, benchmark, benchmark_variants


def test_benchmark_times_every_iteration_and_the_table_derives_from_the_same_numbers(detectors, bus_image):
    results = [benchmark(detectors[v], bus_image, warmup=1, iterations=6) for v in ("ort:fp32", "ort:int8")]
    fp32, int8 = results
    assert fp32.latency.count == 6 and len(fp32.samples_ms) == 6 and fp32.latency.min <= fp32.latency.p50
    assert sum(fp32.stages_ms.values()) == pytest.approx(fp32.latency.mean, rel=0.05)
    table = bench_table(results)
    rows = table.records()
    assert [r["variant"] for r in rows] == ["ort:fp32", "ort:int8"]
    speedup = "speed-up vs ort:fp32"
    assert rows[0][speedup] == 1.0
    assert rows[1][speedup] == pytest.approx(fp32.latency.p50 / int8.latency.p50, abs=0.01)
    assert rows[1]["FPS"] == pytest.approx(int8.fps, abs=0.01)
    assert "end to end (letterbox + inference + NMS)" in table.notes[0]


def test_throughput_mode_counts_images_per_second_and_says_latency_is_per_call(detectors, bus_image):
    r = benchmark(detectors["ort:fp32"], bus_image, warmup=1, iterations=3, batch=2)
    assert r.batch_size == 2 and r.batched_call
    assert r.fps == pytest.approx(2 * 1000.0 / r.latency.p50)
    assert "ms per call of 2 images" in bench_table([r]).notes[0]


def test_variants_are_timed_in_interleaved_rounds(detectors, bus_image):
    calls: list[str] = []
    dets = [detectors["ort:fp32"], detectors["ort:int8"]]
    originals = [d.detect for d in dets]

    def spy(det, original):
        def detect(*args, **kwargs):
            calls.append(str(det.variant))
            return original(*args, **kwargs)

        return detect

    try:
        for d, original in zip(dets, originals, strict=True):
            d.detect = spy(d, original)
        results = benchmark_variants(dets, bus_image, warmup=1, iterations=10, rounds=2)
    finally:
        for d in dets:
            del d.detect  # back to the class's method
    timed = calls[2:]  # after one warm-up call each
    # each round starts one variant later: none always runs first
    assert timed == ["ort:fp32"] * 5 + ["ort:int8"] * 5 + ["ort:int8"] * 5 + ["ort:fp32"] * 5
    assert all(r.rounds == 2 and r.latency.count == 10 for r in results)
