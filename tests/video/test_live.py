"""Live: variants on the newest frame, dropped frames counted, recordings that play, streams that connect or say why.

Real model and clips from ../shared; a stream is a real HTTP server on loopback serving a clip (FFmpeg reads it as
it reads a camera's HTTP stream), a refused RTSP port is a real refusal.
"""

from __future__ import annotations

import csv
import functools
import http.server
import io
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from core.errors import InputError
from core.video import LiveFeed, LiveSession, StreamSource, check_url, iter_frames

TOKYO = "street_people_car_tokyo_360p.mp4"


@pytest.fixture(scope="module")
def frames(videos_dir) -> list[np.ndarray]:
    return list(iter_frames(videos_dir / TOKYO, max_frames=24))


@pytest.fixture
def pair(detectors):
    return [detectors["ort:fp32"], detectors["ort:int8"]]


@pytest.fixture(scope="module")
def http_clip(videos_dir, tmp_path_factory) -> Iterator[str]:
    """A URL that serves a 2-second clip of the Tokyo street over HTTP on loopback."""
    import av

    folder = tmp_path_factory.mktemp("served")
    with av.open(str(videos_dir / TOKYO)) as src, av.open(str(folder / "cam.ts"), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i >= 60:
                break
            frame.pts = None
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cam.ts"
    server.shutdown()


def test_every_variant_runs_on_each_processed_frame_and_skipped_frames_count_as_dropped(pair, frames):
    live = LiveSession(pair)
    for i, frame in enumerate(frames[:12]):
        view = live.process(frame, skipped=2 if i % 4 == 3 else 0)
    s = live.status()
    assert (s.received, s.processed, s.dropped) == (12 + 3 * 2, 12, 6)
    assert [v.variant for v in s.variants] == ["ort:fp32", "ort:int8"]
    assert all(v.frames == 12 and 0 < v.latency.p50 <= v.latency.p95 for v in s.variants)
    assert s.engine_bound_fps == pytest.approx(1000 / sum(v.latency.p50 for v in s.variants))
    # the view: both variants side by side, as wide as two frames (under the width cap) and taller by the captions
    assert view.shape[1] == min(2 * frames[0].shape[1], 1280) and view.shape[0] > frames[0].shape[0] // 2
    assert live.last_frame is frames[11]
    assert s.fps > 0
    assert "6 of 18 frames dropped" in s.words()


@pytest.mark.parametrize("count", [1, 5])
def test_two_to_four_variants(detectors, count):
    with pytest.raises(InputError, match="2 to 4 variants"):
        LiveSession(([detectors["ort:fp32"], detectors["ort:int8"]] * 3)[:count])


def test_a_recording_is_playable_h264_with_one_frame_per_processed_frame_and_its_csv(pair, frames, tmp_path):
    import av

    live = LiveSession(pair)
    live.process(frames[0])  # before recording: not in the file
    live.start_recording(tmp_path / "live.mp4")
    for frame in frames[1:10]:
        live.process(frame, skipped=1)
    assert live.status().recording == 9
    rec = live.stop_recording()
    live.process(frames[10])  # after: not in the file either
    assert rec is not None and rec.frames == 9 and rec.video == tmp_path / "live.mp4"
    with av.open(str(rec.video)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video=0)) == 9
    rows = list(csv.DictReader(io.StringIO(rec.csv_text)))
    assert len(rows) == 9 * 2 and {r["variant"] for r in rows} == {"ort:fp32", "ort:int8"}
    assert [float(r["time_s"]) for r in rows[::2]] == sorted(float(r["time_s"]) for r in rows[::2])
    assert live.stop_recording() is None  # nothing recorded since


def test_check_url_names_what_is_accepted():
    assert check_url(" rtsp://10.0.0.5:554/stream1 ") == "rtsp://10.0.0.5:554/stream1"
    for bad in ("file:///etc/passwd", "/dev/video0", "rtsp://", "camera"):
        with pytest.raises(InputError, match="rtsp://, rtsps://"):
            check_url(bad)


def test_an_unreachable_stream_fails_in_one_line_within_its_timeout():
    started = time.monotonic()
    source = StreamSource("rtsp://user:secret@127.0.0.1:9/cam", connect_timeout=2, read_timeout=2).start()
    frame, seq = source.newest(0, timeout=10)
    state = source.state()
    source.stop()
    assert frame is None and seq == 0 and state.failed and not state.connected
    assert time.monotonic() - started < 8
    assert "\n" not in state.error and "refused" in state.error.lower()
    assert "secret" not in state.error and "user:***@127.0.0.1" in state.error  # no password in messages


def test_a_stream_plays_at_its_own_pace_and_reconnects_when_it_ends(http_clip):
    source = StreamSource(http_clip, connect_timeout=5, read_timeout=5).start()
    try:
        frame, _ = source.newest(0, timeout=10)
        assert frame is not None and frame.shape == (360, 640, 3)
        time.sleep(1.0)
        # paced like a camera: about 30 frames a second, not as fast as the file decodes
        assert source.state().frames <= 30 * 2.5
        deadline = time.monotonic() + 15  # the 2-second clip ends; the source connects again and goes on
        while source.state().reconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert source.state().reconnects >= 1
        seen = source.state().frames
        deadline = time.monotonic() + 10
        while source.state().frames <= seen and time.monotonic() < deadline:
            time.sleep(0.2)
        assert source.state().frames > seen
    finally:
        source.stop()
    assert not source.alive


def test_a_feed_runs_the_newest_frame_and_stops_when_its_browser_session_goes(pair, http_clip):
    live = LiveSession(pair)
    connected = {"yes": True}
    feed = LiveFeed(StreamSource(http_clip), live, alive=lambda: connected["yes"]).start()
    try:
        deadline = time.monotonic() + 20
        while live.status().processed < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        s = live.status()
        assert s.processed >= 5 and s.received - (s.processed + s.dropped) in (0, 1)  # one frame may be in flight
        connected["yes"] = False  # the tab closed
        deadline = time.monotonic() + 10
        while feed.running and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not feed.running and feed.error == ""
    finally:
        feed.stop()
    assert not feed.source.alive


def test_a_feed_on_an_unreachable_stream_ends_with_the_sources_reason(pair):
    live = LiveSession(pair)
    feed = LiveFeed(StreamSource("http://127.0.0.1:9/cam.mjpg", connect_timeout=2), live).start()
    deadline = time.monotonic() + 15
    while feed.running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not feed.running and feed.source.state().failed and live.status().processed == 0
    assert feed.source.state().error.startswith("http://127.0.0.1:9/cam.mjpg: ")
