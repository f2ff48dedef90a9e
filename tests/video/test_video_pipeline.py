"""core.video.pipeline: process_video with real detectors on a few frames, and with stand-ins on its error paths.

Throughput is measured by bench/video_pipeline.py; here, the engine-only ceiling it compares with
(bench/_engine_throughput.py) on three frames.
"""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path

import numpy as np
import pytest

from bench._engine_throughput import engine_only_throughput
from core.errors import InputError
from core.video import CSV_COLUMNS, iter_frames, probe, process_video

from ..video_clips import CARS, TOKYO, FakeDetector, audio_only, decoded, make_clip, marker_corner, noisy_clip


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
        process_video(audio_only(tmp_path / "a.mp4"), [FakeDetector()])


def test_without_output_or_callback_nothing_is_drawn(videos_dir: Path) -> None:
    run = process_video(videos_dir / TOKYO, [FakeDetector("a"), FakeDetector("b")], max_frames=20)
    assert run.frames == 20 and run.output is None and run.counts["b"] == [1] * 20


def test_engine_only_throughput(videos_dir: Path, detectors: dict) -> None:
    frames = list(iter_frames(videos_dir / TOKYO, max_frames=3))
    chosen = [detectors["ort:fp32"], detectors["ort:int8"]]
    e = engine_only_throughput(chosen, frames)
    assert e.frames == 3 and e.fps > 0
    assert set(e.variant_fps) == {"ort:fp32", "ort:int8"} and all(v > e.fps for v in e.variant_fps.values())
