"""core.video.decode: probing, upright decoding, and one clear error for each kind of bad file.

Real clips come from the shared folder; hostile and unusual ones (odd size, rotation metadata, variable
frame rate, audio only, empty, truncated, text) are written by tests/video_clips.py with PyAV.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import InputError
from core.video import iter_frames, probe

from ..video_clips import CARS, TOKYO, audio_only, make_clip, marker_corner, noisy_clip


def test_probe_real_clips(videos_dir: Path) -> None:
    tokyo = probe(videos_dir / TOKYO)
    assert (tokyo.width, tokyo.height, tokyo.fps, tokyo.frame_count) == (640, 360, 30.0, 319)
    assert not tokyo.frame_count_estimated and tokyo.codec == "h264" and not tokyo.has_audio
    assert tokyo.rotation == 0 and tokyo.duration == pytest.approx(319 / 30, abs=0.05)
    cars = probe(videos_dir / CARS)
    assert (cars.width, cars.height, cars.fps, cars.frame_count) == (768, 432, 12.5, 377)
    assert cars.has_audio  # the audio track is ignored, not an error


def test_iter_frames_whole_real_clip(videos_dir: Path) -> None:
    n = 0
    for frame in iter_frames(videos_dir / TOKYO):
        assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8
        n += 1
    assert n == 319
    assert len(list(iter_frames(videos_dir / CARS, max_frames=7))) == 7


def test_odd_dimensions(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "odd.mp4", 641, 359, 5, pix_fmt="yuv444p")  # 4:2:0 cannot be odd; 4:4:4 can
    info = probe(clip)
    assert (info.width, info.height, info.frame_count) == (641, 359, 5)
    frames = list(iter_frames(clip))
    assert len(frames) == 5 and frames[0].shape == (359, 641, 3)
    assert marker_corner(frames[0]) == "top-left"


@pytest.mark.parametrize(
    ("rotation", "corner"),
    [(-90, "top-right"), (90, "bottom-left"), (180, "bottom-right"), (0, "top-left")],
)
def test_rotation_metadata_gives_upright_frames(tmp_path: Path, rotation: int, corner: str) -> None:
    # -90 is what a phone held upright writes: players turn the stored landscape picture clockwise.
    clip = make_clip(tmp_path / "rot.mp4", 96, 48, 3, rotation=rotation)
    info = probe(clip)
    quarter = rotation % 180 != 0
    assert (info.width, info.height) == ((48, 96) if quarter else (96, 48))
    assert (info.coded_width, info.coded_height) == (96, 48)
    assert info.rotation == rotation % 360
    frame = next(iter_frames(clip))
    assert frame.shape == (info.height, info.width, 3)
    assert marker_corner(frame) == corner
    # OpenCV's FFmpeg reader applies the same metadata (as players do): same picture
    cap = cv2.VideoCapture(str(clip))
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape == frame.shape
    assert np.abs(bgr[..., ::-1].astype(int) - frame).mean() < 3


def test_variable_frame_rate(tmp_path: Path) -> None:
    gaps = [33, 33, 100, 33, 200, 33, 33, 66]
    clip = make_clip(tmp_path / "vfr.mp4", 64, 48, 24, gaps_ms=gaps)
    info = probe(clip)
    assert info.frame_count == 24 and not info.frame_count_estimated
    assert info.fps == pytest.approx(info.frame_count / info.duration, rel=0.1)  # average, not the 30 of the gaps
    assert info.fps < 25
    assert len(list(iter_frames(clip))) == 24  # no frame dropped or duplicated


def test_matroska_without_frame_count_is_estimated(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mkv", 64, 48, 30)
    info = probe(clip)
    assert info.frame_count_estimated and abs(info.frame_count - 30) <= 1
    assert len(list(iter_frames(clip))) == 30


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("zero bytes", "empty file"),
        ("text", "not a video file"),
        ("playlist", "not a video file"),
        ("audio only", "no video stream"),
        ("truncated shared clip", "truncated"),
        ("folder", "folder"),
        ("missing", "cannot open"),
    ],
)
def test_bad_inputs_are_one_clear_input_error(tmp_path: Path, videos_dir: Path, kind: str, message: str) -> None:
    path = tmp_path / "upload.mp4"
    if kind == "zero bytes":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "playlist":  # an HLS playlist would make FFmpeg read other files: refused by the demuxer list
        path.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    elif kind == "audio only":
        audio_only(path)
    elif kind == "truncated shared clip":  # this clip keeps its index at the end: cut off, it has none
        data = (videos_dir / TOKYO).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "folder":
        path.mkdir()
    for call in (lambda: probe(path, name="my clip.mp4"), lambda: next(iter_frames(path, name="my clip.mp4"))):
        with pytest.raises(InputError) as info:
            call()
        text = str(info.value)
        assert message in text and "\n" not in text
        assert text.startswith("my clip.mp4: ")
        if kind != "missing":
            assert "mp4, mov, avi, mkv, webm" in text


def test_truncated_file_with_index_first_yields_the_frames_that_decode(tmp_path: Path) -> None:
    full = noisy_clip(tmp_path / "full.mp4", 60)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert probe(cut).frame_count == 60  # the index still says 60
    n = len(list(iter_frames(cut)))
    assert 0 < n < 60
