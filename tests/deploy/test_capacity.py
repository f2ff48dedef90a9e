"""``python -m core capacity``: concurrent streams per variant, what each stream kept up with, the verdict.

The CLI test runs the real YOLOv5n (ort:fp32 and ort:int8, 1 and 2 streams, 2 s a point) on a shared clip; the
scheduler's accounting is checked with a detector that only sleeps a known time (no model: it tests the clock and
the counting, not a runtime); OpenVINO's throughput streams on the real model.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.deploy.capacity import KEEP_UP, CapacityPoint, CapacityResult, Quantile, StreamResult, run_point
from core.runtime import PostParams

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "core", "capacity", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_capacity_json_reports_each_streams_p95_and_the_aggregate_fps(yolov5n_pt, calib_dir, videos_dir, session_cache):
    seconds, fps = 2.0, 15.0
    p = cli("--model", str(yolov5n_pt), "--calib", str(calib_dir), "--variants", "ort:fp32,ort:int8",
            "--streams", "1,2", "--fps", "15", "--seconds", "2", "--warmup", "2", "--threads", "2",
            "--clip", str(videos_dir / "car-detection.mp4"), "--json", cache=session_cache)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(p.stdout)  # the whole of stdout is the JSON
    assert doc["kind"] == "capacity"
    assert doc["clip"] == "car-detection.mp4" and doc["fps"] == fps and doc["cores"] == 2
    assert doc["system"]["cpu"]
    points = {(pt["variant"], pt["streams"]): pt for pt in doc["points"]}
    assert set(points) == {(v, n) for v in ("ort:fp32", "ort:int8") for n in (1, 2)}
    for (_, n), pt in points.items():
        assert pt["threads"] == 2 // n  # the machine's threads split between the streams
        assert len(pt["per_stream"]) == n
        for s in pt["per_stream"]:
            # every frame due in the window is either processed or dropped, none queued forever
            assert abs(s["frames_due"] - seconds * fps) <= 1
            assert s["frames_processed"] + s["frames_dropped"] == s["frames_due"]
            assert s["frames_processed"] >= 1
            p95 = s["latency_p95_ms"]
            assert 0 < p95["ci95"][0] <= p95["value"] <= p95["ci95"][1]
            assert s["latency_p50_ms"]["value"] <= p95["value"]
            # end to end includes at least the detector call itself
            assert p95["value"] >= s["compute_p50_ms"] * 0.5
            budget = 1000 / fps
            keeps = s["frames_processed"] >= KEEP_UP * s["frames_due"]
            assert s["carried"] == (keeps and p95["value"] < budget), s
        processed = sum(s["frames_processed"] for s in pt["per_stream"])
        assert pt["frames_processed"] == processed
        assert pt["aggregate_fps"] == pytest.approx(processed / seconds, abs=0.01)
        assert pt["carried_streams"] == sum(s["carried"] for s in pt["per_stream"])
    verdicts = {v["variant"]: v for v in doc["verdicts"]}
    for variant, v in verdicts.items():
        carried = [n for n in (1, 2) if points[(variant, n)]["all_carried"]]
        assert v["streams_carried"] == max(carried, default=0)
        assert v["words"].startswith("this machine carries" if carried else "this machine does not carry")
        assert f"at 15 fps with {variant}" in v["words"]
        # memory per stream: one more session, measured in a fresh process
        assert v["memory_per"] == "stream" and 5 < v["memory_mb"] < 2000
        assert doc["memory"][variant]["peak_mb"] == v["memory_mb"]


def test_bad_stream_counts_and_a_missing_clip_are_one_line(tmp_path):
    p = cli("--streams", "0,2", "--json", cache=tmp_path)
    assert p.returncode == 2
    assert "stream counts of at least 1" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert json.loads(p.stdout)["kind"] == "error"
    p = cli("--clip", str(tmp_path / "nope.mp4"), "--no-memory", cache=tmp_path)
    assert p.returncode == 2 and "clip not found" in p.stderr


class Sleeper:
    """Not a runtime: a stand-in whose every call takes ``ms``, so the stream clock's counting can be checked."""

    def __init__(self, ms: float) -> None:
        self.ms = ms
        self.variant = "sleep"
        self.backend = SimpleNamespace(description=f"sleeps {ms} ms")

    def detect(self, image: np.ndarray, params: PostParams | None = None) -> None:
        time.sleep(self.ms / 1000)


FRAMES = [np.zeros((4, 4, 3), np.uint8)] * 3


def test_a_stream_faster_than_its_frames_is_carried():
    point = run_point([Sleeper(5)], 1, FRAMES, fps=20, seconds=1.5, warmup=1, params=PostParams(), threads=1)
    (s,) = point.per_stream
    assert s.due == 30 and s.processed == 30 and s.dropped == 0
    assert s.carried and 4 < s.p50.value < 40  # due -> done: the 5 ms call plus scheduling slack
    assert point.aggregate_fps == pytest.approx(20, abs=0.01)


def test_a_stream_slower_than_its_frames_drops_them_instead_of_queueing():
    # each call takes two frame intervals: about every other frame is dropped, and the latency stays bounded
    point = run_point([Sleeper(100)], 1, FRAMES, fps=20, seconds=2.0, warmup=0, params=PostParams(), threads=1)
    (s,) = point.per_stream
    assert s.due == 40
    assert 13 <= s.processed <= 21 and s.dropped == s.due - s.processed
    assert not s.keeps_up and not s.carried
    assert s.p95.value < 250  # never waits behind a growing queue
    assert "dropped" in s.why_not() and "p95" in s.why_not()


def test_two_streams_sharing_nothing_run_concurrently():
    # two 30 ms sleepers at 20 fps each: carried only if the two streams really run at the same time
    point = run_point([Sleeper(30), Sleeper(30)], 2, FRAMES, fps=20, seconds=1.5, warmup=1, params=PostParams(),
                      threads=1)  # fmt: skip
    assert [s.stream for s in point.per_stream] == [0, 1]
    assert point.all_carried, [s.why_not() for s in point.per_stream]
    assert point.aggregate_fps == pytest.approx(40, abs=0.7)


def _stream(processed: int, due: int, p95_ms: float) -> StreamResult:
    lat = tuple([p95_ms * 0.5] * (processed - 10) + [p95_ms] * 10)  # p95 = p95_ms
    return StreamResult(0, due, processed, 15.0, lat, lat)


def test_the_verdict_is_the_largest_count_at_which_every_stream_is_carried():
    ok, slow = _stream(120, 120, 40.0), _stream(120, 120, 80.0)
    points = (
        CapacityPoint("ort:int8", 1, 2, "", 8.0, (ok,), ()),
        CapacityPoint("ort:int8", 2, 1, "", 8.0, (ok, ok), ()),
        CapacityPoint("ort:int8", 4, 1, "", 8.0, (ok, slow, ok, ok), ()),
        CapacityPoint("ort:fp32", 1, 2, "", 8.0, (_stream(100, 120, 40.0),), ()),
    )
    result = CapacityResult({"cpu": "test"}, "yolov5n", "clip.mp4", 15.0, 8.0, 5, 2, points)
    int8, fp32 = result.verdicts
    assert int8.carried == 2
    assert int8.words().startswith("this machine carries 2 streams at 15 fps with ort:int8 (4: 3/4 carried")
    assert fp32.carried == 0 and "does not carry 1 stream" in fp32.words() and "dropped 20 of 120" in fp32.words()
    assert result.table().column("carried") == ["1/1", "2/2", "3/4", "0/1"]
    assert len(result.streams_table().rows) == 8
    assert result.to_dict()["kind"] == "capacity"


def test_the_p95_interval_holds_the_p95():
    samples = list(np.random.default_rng(0).exponential(20.0, 200))
    q = Quantile.of(samples, 0.95)
    assert q.lo <= q.value <= q.hi
    assert q.value == pytest.approx(float(np.percentile(samples, 95)))
    assert math.isnan(Quantile.of([], 0.95).value)


@pytest.mark.slow
def test_openvino_serves_the_streams_from_one_compiled_model(store, bus_image):
    from core.runtime import BackendOptions
    from core.variants import Variant

    det = store.open_detector(Variant.parse("ov:fp32"), BackendOptions(threads=2))
    try:
        before = det.detect(bus_image).detections
        granted = det.backend.use_streams(2)
        assert 1 <= granted <= 2  # at most one stream per thread, read back from OpenVINO
        assert f"in {granted} throughput streams" in det.backend.description
        after = det.detect(bus_image).detections
        assert len(after) == len(before) and np.allclose(after.xyxy, before.xyxy, atol=0.5)
        point = run_point([det], 2, [bus_image], fps=5, seconds=1.0, warmup=1, params=PostParams(), threads=2)
        assert len(point.per_stream) == 2 and all(s.processed >= 1 for s in point.per_stream)
        assert "throughput streams" in point.runs_on
    finally:
        det.close()


@pytest.mark.slow
def test_the_benchmark_page_sizes_the_machine_for_the_variants_it_timed(app_env):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "benchmark.py"), default_timeout=600)
    at.run()
    at.number_input(key="bench:warmup").set_value(0)
    at.number_input(key="bench:iters").set_value(5)
    at.button[0].click()
    at.run()
    at.text_input(key="bench:cap_streams").set_value("1,2")
    at.number_input(key="bench:cap_seconds").set_value(1.0)
    at.checkbox(key="bench:cap_memory").set_value(False)
    next(b for b in at.button if b.label == "Run capacity").click()
    at.run()
    assert not at.exception
    result = at.session_state["bench:capacity"]
    assert result.variants == ["ort:fp32", "ort:fp16", "ort:int8"]  # the variants the page timed
    assert sorted({p.streams for p in result.points}) == [1, 2]
    table = next(d.value for d in at.dataframe if "worst p95 ms" in d.value.columns)
    assert list(table["carried"]) == [f"{p.carried}/{p.streams}" for p in result.points]
    verdicts = [m.value for m in at.markdown if "this machine" in m.value]
    assert len(verdicts) == 3 and all("at 15 fps with ort:" in v for v in verdicts)
    # a stream count that is not one is said so on the page, and the previous result stays
    at.text_input(key="bench:cap_streams").set_value("0")
    next(b for b in at.button if b.label == "Run capacity").click()
    at.run()
    assert any("whole numbers of at least 1" in e.value for e in at.error)
    assert at.session_state["bench:capacity"] is result
