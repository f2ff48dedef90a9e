"""Long runs: a 1,000-frame clip through the video pipeline keeps the process's memory flat.

The clip is the shared street scene, scaled to 320x192 and looped to 1,000 frames, so every frame has
real objects to find; the model runs at 192 so the test takes seconds, not minutes (the size is not the
point: memory that grows per frame grows at any size). bench/video_app.py measures the same in the app.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

from core.video import H264Writer, iter_frames, probe, process_video

FRAMES = 1000
WARM = 100  # frames after which buffers, arenas and caches have reached their size
MAX_GROWTH_MB = 25.0


@pytest.fixture(scope="module")
def long_clip(videos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = [cv2.resize(f, (320, 192), interpolation=cv2.INTER_AREA) for f in iter_frames(
        videos_dir / "street_people_car_tokyo_360p.mp4", max_frames=200)]  # fmt: skip
    path = tmp_path_factory.mktemp("long") / "street-1000-frames.mp4"
    with H264Writer(path, 30, 320, 192, preset="ultrafast") as writer:
        for i in range(FRAMES):
            k = i % (2 * len(source) - 2)  # forwards, then backwards: no jump at the loop
            writer.write(source[k if k < len(source) else 2 * len(source) - 2 - k])
    return path


@pytest.mark.slow
def test_a_thousand_frames_keep_memory_flat(long_clip: Path, yolov5n_pt: Path, session_cache: Path, tmp_path: Path):
    from core.model.sources import resolve_model
    from core.model.store import ModelStore
    from core.variants import Precision, Runtime, Variant

    store = ModelStore(resolve_model(yolov5n_pt), cache_root=session_cache, imgsz=192)
    detector = store.open_detector(Variant(Runtime.ORT, Precision.FP32))
    proc = psutil.Process()
    rss: dict[int, float] = {}
    objects = []

    def on_frame(update) -> None:  # as the page does: keep the latest, draw one frame now and then
        objects.append(sum(update.counts.values()))
        if update.index % 10 == 0:
            assert update.image.shape[1] == 320
        if update.index + 1 in (WARM, FRAMES):
            rss[update.index + 1] = proc.memory_info().rss / 2**20

    try:
        run = process_video(long_clip, [detector], output=tmp_path / "out.mp4", on_frame=on_frame)
    finally:
        detector.close()
    assert run.frames == FRAMES and not run.stopped and run.damage is None
    assert probe(run.output).frame_count == FRAMES
    assert np.mean(objects) > 2  # a busy street all the way through
    growth = rss[FRAMES] - rss[WARM]
    print(f"RSS after {WARM} frames {rss[WARM]:.0f} MB, after {FRAMES} frames {rss[FRAMES]:.0f} MB ({growth:+.1f})")
    assert growth < MAX_GROWTH_MB, f"memory grew {growth:.1f} MB over {FRAMES - WARM} frames"
