"""core.video.job: VideoJob runs process_video on a worker thread; the caller polls it and may stop it.

One run with a real detector on a few frames of a shared clip; the stop, memory and error paths use the
stand-in detector, so they take a second each.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.runtime.processing import PostParams
from core.video import VideoJob

from ..video_clips import CARS, TOKYO, FakeDetector, decoded


def _wait(job: VideoJob, timeout: float = 120) -> None:
    job.thread.join(timeout)
    assert not job.running, "the job did not finish in time"


def test_job_runs_to_the_end_with_a_result_and_latencies(videos_dir: Path, detectors: dict, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    job = VideoJob(videos_dir / TOKYO, TOKYO, [detectors["ort:fp32"], FakeDetector()], PostParams(), out, 8)
    assert job.name == TOKYO and job.variants == ["ort:fp32", "fake:fp32"]
    _wait(job)
    assert job.error == "" and job.result is not None
    run = job.result
    assert run.frames == 8 and not run.stopped and run.output == out and decoded(out)[4] == 8
    latest, latency = job.snapshot()
    assert latest is not None and latest.index == 7 and set(latest.counts) == {"ort:fp32", "fake:fp32"}
    assert {v: len(ms) for v, ms in latency.items()} == {"ort:fp32": 8, "fake:fp32": 8}
    assert latency == run.latency_ms and all(ms > 0 for ms in latency["ort:fp32"])
    latency["ort:fp32"].clear()  # a copy: the job's own lists are untouched
    assert len(job.latency["ort:fp32"]) == 8
    assert job.rss_start_mb > 0 and job.rss_end_mb > 0
    assert job.rss_warm_mb == job.rss_end_mb  # fewer than RSS_WARM_FRAMES frames: the end stands in


def test_memory_is_read_after_the_warm_up_frames(videos_dir: Path, tmp_path: Path) -> None:
    frames = VideoJob.RSS_WARM_FRAMES + 5
    job = VideoJob(videos_dir / TOKYO, TOKYO, [FakeDetector()], PostParams(), tmp_path / "out.mp4", frames)
    _wait(job)
    assert job.error == "" and job.result is not None and job.result.frames == frames
    assert job.rss_start_mb > 0 and job.rss_warm_mb > 0 and job.rss_end_mb > 0


def test_a_stopped_job_stops_early_and_keeps_what_it_processed(videos_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    job = VideoJob(videos_dir / CARS, CARS, [FakeDetector()], PostParams(), out, None)
    deadline = time.monotonic() + 60
    while job.running and len(job.snapshot()[1]["fake:fp32"]) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.stop()
    _wait(job)
    assert job.error == "" and job.result is not None
    run = job.result
    assert run.stopped and 5 <= run.frames < 377  # the clip has 377 frames
    assert decoded(out)[4] == run.frames and len(job.latency["fake:fp32"]) == run.frames


def test_errors_stay_in_the_job_as_one_message_naming_the_file(videos_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "upload.mp4"
    bad.write_text("this is not a video\n" * 50)
    job = VideoJob(bad, "my clip.mp4", [FakeDetector()], PostParams(), tmp_path / "out.mp4", None)
    _wait(job)
    assert job.result is None and job.latest is None
    assert job.error.startswith("my clip.mp4: not a video file") and "\n" not in job.error

    crash = VideoJob(videos_dir / TOKYO, TOKYO, [FakeDetector(fail_at=3)], PostParams(), tmp_path / "c.mp4", None)
    _wait(crash)
    assert crash.result is None and crash.error == f"{TOKYO}: unexpected RuntimeError: backend crashed"
    assert len(crash.latency["fake:fp32"]) == 2 and not (tmp_path / "c.mp4").exists()
    assert crash.rss_end_mb > 0
