"""Frames keep their own timestamps: a variable-frame-rate clip stays variable, a constant-rate one unchanged.

The clips are written here with PyAV at irregular presentation times; the output is read back frame by frame.
"""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from core.video import H264Writer, iter_frames, probe, process_video

from ..video_clips import FakeDetector, make_clip

TICK = 1 / 90000  # the output's time base
# presentation times (ms) of a phone-like clip: steady, then a 0.7 s stall, a burst, a slow stretch
VFR_MS = [0, 33, 66, 766, 781, 796, 830, 1080, 1330, 1363, 1396, 1430]


def vfr_clip(path: Path, times_ms: list[int] = VFR_MS, time_base: Fraction = Fraction(1, 600)) -> Path:
    """An H.264 MP4 whose frames sit at ``times_ms`` (in ``time_base`` ticks, like a phone's 1/600)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = time_base
        for i, ms in enumerate(times_ms):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 + 15 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = round(Fraction(ms, 1000) / time_base), time_base
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


def frame_times(path: Path) -> tuple[list[float], float]:
    """(each frame's presentation time, the stream's end), seconds from the first frame."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = [float(f.time) for f in c.decode(s)]
        end = float((int(s.start_time or 0) + s.duration) * s.time_base)
    return [t - times[0] for t in times], end - times[0]


def assert_times(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= TICK + 1e-9, (got, want)


def assert_end(end: float, want: float) -> None:
    """The video lasts until ``want``."""
    assert end == pytest.approx(want, abs=TICK)


def test_writer_shows_each_frame_at_its_time(tmp_path: Path) -> None:
    out = tmp_path / "timed.mp4"
    times = [0.0, 0.04, 0.74, Fraction(7551, 10000), 1.0]
    with H264Writer(out, 30, 64, 48) as w:
        for i, t in enumerate(times):
            w.write(np.full((48, 64, 3), 40 * i, np.uint8), t, 0.5 if i == len(times) - 1 else None)
        w.write(np.zeros((48, 64, 3), np.uint8), 0.9, 0.1)  # not after the last: one tick after it
    got, end = frame_times(out)
    assert_times(got, [*map(float, times), 1.0 + TICK])
    assert_end(end, 1.0 + TICK + 0.1)
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # still +faststart

    # without times: one frame after another at fps, as before
    with H264Writer(tmp_path / "cfr.mp4", Fraction(25, 2), 64, 48) as w:
        for i in range(6):
            w.write(np.full((48, 64, 3), 40 * i, np.uint8))
    got, end = frame_times(tmp_path / "cfr.mp4")
    assert_times(got, [i * 0.08 for i in range(6)])
    assert_end(end, 0.48)
    assert probe(tmp_path / "cfr.mp4").fps == 12.5


def test_a_variable_frame_rate_clip_keeps_its_frame_times(tmp_path: Path) -> None:
    src = vfr_clip(tmp_path / "phone.mp4")
    want, src_end = frame_times(src)
    assert_times(want, [round(ms * 600 / 1000) / 600 for ms in VFR_MS])  # the clip is what the test means
    updates = []
    out = tmp_path / "out.mp4"
    run = process_video(src, [FakeDetector()], output=out, on_frame=updates.append)
    got, end = frame_times(out)
    assert_times(got, want)  # every frame where it was, not spread at the average rate
    assert_end(end, src_end)  # and the last one lasts as long
    assert probe(out).fps == pytest.approx(probe(src).fps, rel=0.01)
    assert_times(run.frame_times, want)
    assert_times([u.time for u in updates], want)
    assert [round(u.duration, 3) for u in updates[:4]] == [0.033, 0.033, 0.7, 0.015]

    rows = list(csv.DictReader(io.StringIO(run.csv_text())))
    assert_times([float(r["time_s"]) for r in rows], want)


def test_a_stopped_or_shortened_run_keeps_the_times_of_its_frames(tmp_path: Path) -> None:
    src = vfr_clip(tmp_path / "phone.mp4")
    want, _ = frame_times(src)
    seen: list[object] = []
    run = process_video(src, [FakeDetector()], output=tmp_path / "stop.mp4", on_frame=seen.append,
                        should_stop=lambda: len(seen) >= 3)  # fmt: skip
    assert run.stopped and run.frames == 3
    got, end = frame_times(tmp_path / "stop.mp4")
    assert_times(got, want[:3])
    assert end > want[2]  # the last frame is shown (how long: see H264Writer, a B-frame last in decoding order)

    run = process_video(src, [FakeDetector()], output=tmp_path / "six.mp4", max_frames=6)
    got, end = frame_times(tmp_path / "six.mp4")
    assert_times(got, want[:6]) and run.frames == 6
    assert end > want[5]
    assert len(list(iter_frames(src, max_frames=6))) == 6


def test_a_constant_rate_clip_is_unchanged(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "cfr.mp4", 64, 48, 10, fps=30)
    out = tmp_path / "out.mp4"
    process_video(src, [FakeDetector()], output=out)
    got, end = frame_times(out)
    assert_times(got, [i / 30 for i in range(10)])
    assert_end(end, 10 / 30)
    assert probe(out).fps == 30.0
