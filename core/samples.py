"""Sample images for demos and default benchmarks: the project's assets, then ultralytics' own."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import InputError

PROJECT_SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"


def sample_images() -> list[Path]:
    found: list[Path] = []
    if PROJECT_SAMPLES.is_dir():
        found += sorted(p for p in PROJECT_SAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    spec = importlib.util.find_spec("ultralytics")
    if spec is not None and spec.origin:
        assets = Path(spec.origin).parent / "assets"
        found += sorted(assets.glob("*.jpg"))
    return found


def sample_image(name: str = "bus.jpg") -> Path:
    for p in sample_images():
        if p.name == name:
            return p
    raise InputError(f"sample image {name!r} not found (ultralytics' assets are missing: reinstall requirements)")


ENV_SAMPLE_VIDEOS = "YOLOLAB_SAMPLE_VIDEOS"  # a folder of sample clips offered by the video page
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")


def sample_videos() -> list[Path]:
    """Clips from ``$YOLOLAB_SAMPLE_VIDEOS`` and the project's assets (none are shipped in git)."""
    import os

    folders = [PROJECT_SAMPLES]
    if os.environ.get(ENV_SAMPLE_VIDEOS):
        folders.insert(0, Path(os.environ[ENV_SAMPLE_VIDEOS]))
    return [p for d in folders if d.is_dir() for p in sorted(d.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES]


def demo_video(directory: Path, seconds: float = 6.0, fps: int = 15) -> Path:
    """A short clip made from the sample images (a slow pan across each), so every install has a video.

    Written once into ``directory`` (the cache) with the same H.264 writer the app uses.
    """
    import numpy as np

    from .cache import file_lock
    from .images import load_image
    from .video import H264Writer

    target = directory / "demo-pan.mp4"
    with file_lock(target):
        if target.is_file():
            return target
        w, h = 640, 360
        images = [load_image(p) for p in sample_images()[:2]]
        per_image = int(seconds * fps / max(len(images), 1))
        with H264Writer(target, fps, w, h) as out:
            for img in images:
                import cv2

                scale = max(w / img.shape[1], h / img.shape[0]) * 1.25
                big = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)))
                dy, dx = big.shape[0] - h, big.shape[1] - w
                for t in np.linspace(0.0, 1.0, per_image):
                    y, x = round(dy * t), round(dx * (1 - t))
                    out.write(np.ascontiguousarray(big[y : y + h, x : x + w]))
    return target
