"""core.video.writer: H264Writer writes browser-ready MP4s (H.264, yuv420p, +faststart), atomically."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from core.video import H264Writer, probe

from ..video_clips import decoded


def test_writer_odd_size_is_padded_and_browser_ready(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "odd.mp4"
    with H264Writer(out, Fraction(25, 2), 641, 359) as w:
        for i in range(10):
            w.write(np.full((359, 641, 3), i * 20, np.uint8))
    assert decoded(out) == ("h264", "yuv420p", 642, 360, 10)
    info = probe(out)
    assert info.fps == 12.5
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # +faststart: playable while it downloads
    assert list(out.parent.iterdir()) == [out]  # no temporary file left


def test_writer_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    w = H264Writer(out, 30, 64, 48)
    for _ in range(40):  # enough for the encoder to emit packets, so data is on disk
        w.write(np.zeros((48, 64, 3), np.uint8))
    # until close(), only a hidden temporary file exists: what a crash would leave
    assert not out.exists() and [p.name.startswith(".out.mp4.") for p in tmp_path.iterdir()] == [True]
    assert w.close() == out and decoded(out)[4] == 40

    with pytest.raises(RuntimeError), H264Writer(out, 30, 64, 48) as w2:
        w2.write(np.ones((48, 64, 3), np.uint8))
        raise RuntimeError("crash half-way")
    assert decoded(out)[4] == 40  # the earlier file is untouched
    assert list(tmp_path.iterdir()) == [out]

    with H264Writer(tmp_path / "none.mp4", 30, 64, 48):
        pass
    assert not (tmp_path / "none.mp4").exists()  # no frame, no (unplayable) file

    with pytest.raises(ValueError, match="64x48"):
        H264Writer(tmp_path / "x.mp4", 30, 48, 64).write(np.zeros((64, 48, 3), np.float32))


def test_a_slowed_copy_has_every_frame_and_plays_four_times_longer(tmp_path: Path) -> None:
    from core.video import iter_frames, probe, slowed_copy

    src = tmp_path / "result.mp4"
    with H264Writer(src, 30, 64, 48) as w:
        for i in range(45):
            w.write(np.full((48, 64, 3), i * 5, np.uint8))
    slow = slowed_copy(src, tmp_path / "result-slow.mp4", factor=4)
    a, b = probe(src), probe(slow)
    assert b.duration == pytest.approx(4 * a.duration, rel=0.02) and b.fps == pytest.approx(a.fps / 4)
    original, slowed = list(iter_frames(src)), list(iter_frames(slow))
    assert len(slowed) == len(original) == 45
    assert all(np.array_equal(x, y) for x, y in zip(original, slowed, strict=True))  # the same pictures
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
