"""Sample images and clips for demos and default benchmarks: ultralytics' bus and zidane, then the project's own
(``assets/samples``: public-domain / CC0 pictures, licences beside them), and a demo clip made from those."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import InputError
from .formats import SAMPLE_IMAGE_SUFFIXES, VIDEO_SUFFIXES

PROJECT_SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"


def sample_images() -> list[Path]:
    """bus.jpg and zidane.jpg first (the default pictures: many objects), then the project's own."""
    found: list[Path] = []
    spec = importlib.util.find_spec("ultralytics")
    if spec is not None and spec.origin:
        assets = Path(spec.origin).parent / "assets"
        found += sorted(assets.glob("*.jpg"))
    if PROJECT_SAMPLES.is_dir():
        found += sorted(p for p in PROJECT_SAMPLES.iterdir() if p.suffix.lower() in SAMPLE_IMAGE_SUFFIXES)
    return found


def sample_image(name: str = "bus.jpg") -> Path:
    for p in sample_images():
        if p.name == name:
            return p
    raise InputError(f"sample image {name!r} not found (ultralytics' assets are missing: reinstall requirements)")


def default_sample() -> Path:
    """What to time when no image is given: bus.jpg where ultralytics' assets are installed, else the
    project's first picture (an install without torch and ultralytics: requirements-onnx.txt)."""
    found = sample_images()
    if not found:
        raise InputError("no sample image found: pass an image")
    return next((p for p in found if p.name == "bus.jpg"), found[0])


ENV_SAMPLE_VIDEOS = "YOLOLAB_SAMPLE_VIDEOS"  # a folder of sample clips offered by the video page


def sample_videos() -> list[Path]:
    """Clips from ``$YOLOLAB_SAMPLE_VIDEOS``, then any in the project's assets (see :func:`demo_clip` for the one
    every install has)."""
    import os

    folders = [PROJECT_SAMPLES]
    if os.environ.get(ENV_SAMPLE_VIDEOS):
        folders.insert(0, Path(os.environ[ENV_SAMPLE_VIDEOS]))
    return [p for d in folders if d.is_dir() for p in sorted(d.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES]


DEMO_CLIP = "demo-pan.mp4"
DEMO_IMAGES = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")  # the project's own pictures (assets/samples)


def demo_clip(directory: Path, seconds: float = 6.0, fps: int = 15, size: tuple[int, int] = (640, 360)) -> Path:
    """A 6 s clip panning slowly across the project's sample pictures, so every install has a video to try
    without a download. Made once into ``directory`` (the cache), under a lock, with the app's H.264 writer."""
    import cv2
    import numpy as np

    from .cache import file_lock
    from .images import load_image
    from .video import H264Writer

    target = directory / DEMO_CLIP
    directory.mkdir(parents=True, exist_ok=True)
    with file_lock(target):
        if target.is_file():
            return target
        w, h = size
        images = [load_image(PROJECT_SAMPLES / name) for name in DEMO_IMAGES]
        per_image = int(seconds * fps / len(images))
        with H264Writer(target, fps, w, h) as out:
            for img in images:
                scale = max(w / img.shape[1], h / img.shape[0]) * 1.25
                big = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)))
                dy, dx = big.shape[0] - h, big.shape[1] - w
                for t in np.linspace(0.0, 1.0, per_image):
                    y, x = round(dy * t), round(dx * (1 - t))
                    out.write(np.ascontiguousarray(big[y : y + h, x : x + w]))
    return target
