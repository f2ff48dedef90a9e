"""Issue 5, videos in the app: the clips of the test_video_*.py matrix uploaded on the Compare video page.

The engine's behaviour on each (probe, decode, pipeline) is tested in test_video_*.py and the CLI's in
test_cli.py; here the page must turn each into one message or a processed, playable result, never a
traceback, and a run stopped half-way must still offer what it processed.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import pytest
from streamlit.testing.v1 import AppTest

from ..video_clips import TOKYO, audio_only, make_clip, noisy_clip

ROOT = Path(__file__).resolve().parents[2]


def video_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "compare_video.py"), default_timeout=600)
    at.run()
    return at


def upload_and_start(at: AppTest, name: str, data: bytes) -> None:
    at.file_uploader[0].set_value((name, data, "video/mp4"))
    at.run()
    next(b for b in at.button if b.label == "Start").click()
    at.run()


def _bad_clip(kind: str, tmp_path: Path, videos_dir: Path) -> bytes:
    path = tmp_path / "clip.mp4"
    if kind == "zero bytes":
        return b""
    if kind == "text named .mp4":
        return b"not a video at all\n" * 100
    if kind == "truncated (index at the end)":
        data = (videos_dir / TOKYO).read_bytes()
        return data[: len(data) // 2]
    assert kind == "audio only"
    return audio_only(path).read_bytes()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("zero bytes", "empty file"),
        ("text named .mp4", "not a video file"),
        ("truncated (index at the end)", "truncated"),
        ("audio only", "no video stream"),
    ],
)
def test_a_clip_that_is_not_a_video_is_named_before_anything_runs(app_env, tmp_path, videos_dir, kind, message):
    at = video_page()
    upload_and_start(at, "holiday.mp4", _bad_clip(kind, tmp_path, videos_dir))
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("holiday.mp4: ") and message in errors[0], errors
    assert "vid:job" not in at.session_state  # no worker was started


@pytest.mark.parametrize(
    ("kind", "frames"),
    [("odd size 641x359", 4), ("rotated phone clip", 4), ("variable frame rate", 12), ("cut after its index", None)],
)
def test_unusual_clips_are_processed_into_a_playable_video(app_env, tmp_path, kind, frames):
    path = tmp_path / "clip.mp4"
    if kind == "odd size 641x359":
        make_clip(path, 641, 359, 4, pix_fmt="yuv444p")
    elif kind == "rotated phone clip":
        make_clip(path, 96, 48, 4, rotation=-90)
    elif kind == "variable frame rate":
        make_clip(path, 64, 48, 12, gaps_ms=[33, 100, 33, 200])
    else:
        full = noisy_clip(tmp_path / "full.mp4", 40)
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    at = video_page()
    upload_and_start(at, path.name, path.read_bytes())
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.get("video"), "the result video is shown"
    done = at.dataframe[0].value["frames"]
    if frames is not None:
        assert (done == frames).all()
    else:  # a file cut off half-way: what decodes is processed, and the user is told
        assert (done > 0).all() and (done < 40).all()
        assert any("cut off" in w.value for w in at.warning)


def test_a_run_stopped_half_way_keeps_and_offers_what_was_processed(app_env, detectors, videos_dir, tmp_path):
    from core.runtime.processing import PostParams
    from core.video import VideoJob

    clip = videos_dir / TOKYO
    output = tmp_path / "out.mp4"
    job = VideoJob(clip, clip.name, [detectors["ort:fp32"]], PostParams(), output, None)
    while job.running and len(job.latency["ort:fp32"]) < 6:
        time.sleep(0.05)
    job.stop()  # what the Stop button does
    job.thread.join(120)
    assert not job.error and job.result.stopped
    done = job.result.frames
    assert 6 <= done < 319

    at = AppTest.from_file(str(ROOT / "pages" / "compare_video.py"), default_timeout=600)
    at.session_state["vid:job"] = job  # the session the job ran in comes back to the page
    at.run()
    assert not at.exception
    assert any(f"Stopped after {done} frames" in w.value for w in at.warning)
    assert at.get("video")
    assert (at.dataframe[0].value["frames"] == done).all()
    downloads = {b.label: b for b in at.get("download_button")}
    assert set(downloads) == {"Download the video (MP4)", "Per-frame latencies (CSV)"}
    with av.open(str(output)) as c:
        assert sum(1 for _ in c.decode(video=0)) == done  # the kept video holds every processed frame
    assert len(job.result.csv_text().splitlines()) == 1 + done
