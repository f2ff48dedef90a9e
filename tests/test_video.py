"""core.video: probing, upright decoding, H.264 writing, side-by-side frames and the processing pipeline.

Real clips come from the shared folder; hostile and unusual ones (odd size, rotation metadata, variable
frame rate, audio only, empty, truncated, text) are written here with PyAV. Real inference uses the
session's YOLOv5n detectors on a few frames only; throughput is measured by bench/video_pipeline.py.
"""

from __future__ import annotations

import csv
import io
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.detections import DetectionResult, Detections, StageTimings
from core.errors import InputError
from core.video import (
    CSV_COLUMNS,
    H264Writer,
    engine_only_throughput,
    iter_frames,
    probe,
    process_video,
    side_by_side,
)

TOKYO = "street_people_car_tokyo_360p.mp4"
CARS = "car-detection.mp4"
MARK = 200  # marker brightness; the background is 30


def make_clip(
    path: Path,
    width: int,
    height: int,
    frames: int,
    *,
    fps: int = 30,
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    gaps_ms: list[int] | None = None,
) -> Path:
    """A clip with a bright square in the stored picture's top-left corner on a dark background."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if rotation is not None:
        stream.set_display_rotation(rotation)  # FFmpeg convention: degrees counter-clockwise
    if gaps_ms is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
    image = np.full((height, width, 3), 30, np.uint8)
    image[: height // 4, : width // 4] = MARK
    t = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if gaps_ms is not None:
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            t += gaps_ms[i % len(gaps_ms)]
        else:
            frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


def noisy_clip(path: Path, frames: int) -> Path:
    """An MP4 with its index first (+faststart, so it survives truncation) and frames of real size:
    noise does not compress, so cutting the file in half cuts the frames in half."""
    rng = np.random.default_rng(0)
    with H264Writer(path, 30, 160, 96) as w:
        for _ in range(frames):
            w.write(rng.integers(0, 256, (96, 160, 3), dtype=np.uint8))
    return path


def marker_corner(rgb: np.ndarray) -> str:
    """Which corner holds the bright square: 'top-left', 'top-right', 'bottom-left' or 'bottom-right'."""
    ys, xs = np.nonzero(rgb.mean(axis=2) > (MARK + 30) / 2)
    h, w = rgb.shape[:2]
    return f"{'top' if ys.mean() < h / 2 else 'bottom'}-{'left' if xs.mean() < w / 2 else 'right'}"


def decoded(path: Path) -> tuple[str, str, int, int, int]:
    """(codec, pixel format, width, height, frames) by decoding the whole file with PyAV."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return s.codec_context.name, s.codec_context.pix_fmt, s.codec_context.width, s.codec_context.height, n


class FakeDetector:
    """A stand-in that finds one box, optionally failing at call ``fail_at`` (for the error paths)."""

    def __init__(self, name: str = "fake:fp32", fail_at: int | None = None) -> None:
        self.variant = name
        self.calls = 0
        self.fail_at = fail_at

    def detect(self, image: np.ndarray, params: object = None) -> DetectionResult:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("backend crashed")
        h, w = image.shape[:2]
        box = np.array([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]], np.float32)
        dets = Detections(box, np.array([0.9], np.float32), np.array([0]), ("thing",))
        return DetectionResult(dets, StageTimings(1.0, 2.0, 0.5))


# ---------------------------------------------------------------------------------------------
# probe and decode


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


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 44100, i * 1024
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


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
        _audio_only(path)
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


# ---------------------------------------------------------------------------------------------
# writing


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


# ---------------------------------------------------------------------------------------------
# side by side


@pytest.mark.parametrize(("n", "grid", "shape_tiles"), [(1, None, (1, 1)), (2, None, (1, 2)), (3, None, (1, 3)),
                                                         (4, None, (2, 2)), (4, False, (1, 4))])  # fmt: skip
def test_side_by_side_layout_and_captions(n: int, grid: bool | None, shape_tiles: tuple[int, int]) -> None:
    h, w = 90, 160
    frames = [np.full((h, w, 3), 50 * (i + 1), np.uint8) for i in range(n)]
    out = side_by_side(frames, [f"ort:v{i}  12.3 ms  4 objects" for i in range(n)], grid=grid)
    rows, cols = shape_tiles
    bar = (out.shape[0] // rows) - h
    assert bar > 0 and out.shape == (rows * (h + bar), cols * w, 3)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = out[r * (h + bar) : (r + 1) * (h + bar), c * w : (c + 1) * w]
        assert (tile[bar:] == 50 * (i + 1)).all()  # the picture, untouched, under its caption
        caption = tile[:bar]
        assert (caption.max(axis=2) > 200).any() and np.median(caption) < 60  # white text on a dark bar


def test_side_by_side_rejects_mismatched_inputs() -> None:
    a = np.zeros((10, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="label"):
        side_by_side([a, a], ["one"])
    with pytest.raises(ValueError, match="size"):
        side_by_side([a, np.zeros((12, 20, 3), np.uint8)], ["a", "b"])
    with pytest.raises(ValueError, match="at most"):
        side_by_side([a] * 5, ["x"] * 5)


# ---------------------------------------------------------------------------------------------
# the pipeline with real detectors (few frames)


def test_process_video_side_by_side_real(videos_dir: Path, detectors: dict, tmp_path: Path) -> None:
    chosen = [detectors["ort:fp32"], detectors["ort:int8"]]
    updates = []
    progress = []
    out = tmp_path / "compare.mp4"
    run = process_video(
        videos_dir / TOKYO,
        chosen,
        output=out,
        max_frames=12,
        on_frame=updates.append,
        progress=lambda f, m: progress.append(f),
    )
    assert run.frames == 12 and not run.stopped and run.damage is None
    assert run.output == out and run.variants == ["ort:fp32", "ort:int8"]
    codec, pix, w, h, n = decoded(out)
    assert (codec, pix, n) == ("h264", "yuv420p", 12)
    assert w == 2 * 640 and h % 2 == 0 and h > 360  # two tiles, each under a caption bar
    assert probe(out).fps == 30.0

    assert [u.index for u in updates] == list(range(12))
    first = updates[0]
    assert first.total == 12 and first.image is not None and first.image.shape[1] == 1280
    assert set(first.counts) == {"ort:fp32", "ort:int8"} and first.counts["ort:fp32"] > 0  # a busy street
    assert all(ms > 0 for ms in first.latency_ms.values())
    assert progress[-1] == pytest.approx(1.0)

    assert {v: s.count for v, s in run.stats.items()} == {"ort:fp32": 12, "ort:int8": 12}
    assert run.fps_processed > 0 and len(run.latency_ms["ort:int8"]) == 12
    summary = run.to_dict()
    assert summary["frames"] == 12 and [v["variant"] for v in summary["variants"]] == run.variants
    assert summary["variants"][0]["latency_ms"]["count"] == 12

    rows = list(csv.reader(io.StringIO(run.csv_text())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 1 + 12 * 2
    assert rows[1][:2] == ["0", "ort:fp32"] and rows[2][:2] == ["0", "ort:int8"] and rows[-1][0] == "11"
    for row in rows[1:]:
        pre, inf, post, total = map(float, row[2:6])
        assert total == pytest.approx(pre + inf + post, abs=0.01) and inf > 0
    csv_file = tmp_path / "lat.csv"
    run.write_csv(csv_file)
    assert csv_file.read_text() == run.csv_text()


def test_stop_keeps_a_playable_video_of_the_processed_frames(videos_dir: Path, detectors: dict, tmp_path: Path) -> None:
    seen = []
    out = tmp_path / "stopped.mp4"
    run = process_video(
        videos_dir / CARS,
        [detectors["ort:int8"]],
        output=out,
        on_frame=seen.append,
        should_stop=lambda: len(seen) >= 5,
    )
    assert run.stopped and run.frames == 5 and run.damage is None
    codec, _, w, _, n = decoded(out)
    assert (codec, w, n) == ("h264", 768, 5)
    assert probe(out).fps == 12.5  # the source's rate: the result plays at the original speed


def test_unusual_clips_through_the_pipeline(tmp_path: Path, detectors: dict) -> None:
    fp32 = [detectors["ort:fp32"]]
    # odd size: a single tile keeps the odd width; the writer pads it to even
    odd = make_clip(tmp_path / "odd.mp4", 641, 359, 3, pix_fmt="yuv444p")
    run = process_video(odd, fp32, output=tmp_path / "odd-out.mp4")
    _, _, w, h, n = decoded(tmp_path / "odd-out.mp4")
    assert n == 3 and w == 642 and h % 2 == 0

    # rotated phone clip: the result is upright, marker in the top-right of the picture under the caption
    rot = make_clip(tmp_path / "phone.mp4", 96, 48, 3, rotation=-90)
    frames: list[np.ndarray] = []
    run = process_video(rot, fp32, output=tmp_path / "rot-out.mp4", on_frame=lambda u: frames.append(u.image))
    picture = frames[0][-96:]  # below the caption bar
    assert picture.shape == (96, 48, 3) and marker_corner(picture) == "top-right"
    composed_h = frames[0].shape[0]
    assert decoded(tmp_path / "rot-out.mp4")[2:] == (48, composed_h + composed_h % 2, 3)

    # variable frame rate: every frame once, written at the average rate
    vfr = make_clip(tmp_path / "vfr.mp4", 64, 48, 12, gaps_ms=[33, 100, 33, 200])
    run = process_video(vfr, fp32, output=tmp_path / "vfr-out.mp4")
    assert run.frames == 12 and decoded(tmp_path / "vfr-out.mp4")[4] == 12
    assert probe(tmp_path / "vfr-out.mp4").fps == pytest.approx(probe(vfr).fps, rel=0.01)


def test_truncated_clip_is_processed_up_to_the_cut(tmp_path: Path) -> None:
    full = noisy_clip(tmp_path / "full.mp4", 60)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    run = process_video(cut, [FakeDetector()], output=tmp_path / "out.mp4")
    assert 0 < run.frames < 60 and decoded(tmp_path / "out.mp4")[4] == run.frames
    assert run.damage is not None and "cut off" in run.damage and run.damage.startswith("cut.mp4: ")


def test_failure_mid_way_leaves_no_file_and_no_threads(videos_dir: Path, tmp_path: Path) -> None:
    before = threading.active_count()
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="backend crashed"):
        process_video(videos_dir / TOKYO, [FakeDetector(fail_at=8)], output=out)
    assert list(tmp_path.iterdir()) == []
    assert threading.active_count() == before


def test_process_video_refuses_bad_requests(videos_dir: Path, tmp_path: Path) -> None:
    clip = videos_dir / TOKYO
    with pytest.raises(InputError, match="at least one variant"):
        process_video(clip, [])
    with pytest.raises(InputError, match="at most 4"):
        process_video(clip, [FakeDetector(f"v{i}") for i in range(5)])
    with pytest.raises(InputError, match="each variant once"):
        process_video(clip, [FakeDetector("a"), FakeDetector("a")])
    with pytest.raises(InputError, match="overwrite the input"):
        process_video(clip, [FakeDetector()], output=clip)
    with pytest.raises(InputError, match="no video stream"):
        process_video(_audio_only(tmp_path / "a.mp4"), [FakeDetector()])


def test_without_output_or_callback_nothing_is_drawn(videos_dir: Path) -> None:
    run = process_video(videos_dir / TOKYO, [FakeDetector("a"), FakeDetector("b")], max_frames=20)
    assert run.frames == 20 and run.output is None and run.counts["b"] == [1] * 20


def test_engine_only_throughput(videos_dir: Path, detectors: dict) -> None:
    frames = list(iter_frames(videos_dir / TOKYO, max_frames=3))
    chosen = [detectors["ort:fp32"], detectors["ort:int8"]]
    e = engine_only_throughput(chosen, frames)
    assert e.frames == 3 and e.fps > 0
    assert set(e.variant_fps) == {"ort:fp32", "ort:int8"} and all(v > e.fps for v in e.variant_fps.values())
