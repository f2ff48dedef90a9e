"""Sample images and clips for demos and default benchmarks: ultralytics' bus and zidane, then the project's own
(``assets/samples``: public-domain / CC0 pictures, licences beside them), and a demo clip made from those."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from core.errors import InputError
from core.formats import SAMPLE_IMAGE_SUFFIXES, VIDEO_SUFFIXES

PROJECT_SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"


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
