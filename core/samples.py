"""Sample images and clips for demos and default benchmarks: ultralytics' bus and zidane, then the project's own
(``assets/samples``: public-domain / CC0 pictures and a demo clip made from them, licences beside them)."""

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


ENV_SAMPLE_VIDEOS = "YOLOLAB_SAMPLE_VIDEOS"  # a folder of sample clips offered by the video page


def sample_videos() -> list[Path]:
    """Clips from ``$YOLOLAB_SAMPLE_VIDEOS``, then the project's own (the demo clip ships with it)."""
    import os

    folders = [PROJECT_SAMPLES]
    if os.environ.get(ENV_SAMPLE_VIDEOS):
        folders.insert(0, Path(os.environ[ENV_SAMPLE_VIDEOS]))
    return [p for d in folders if d.is_dir() for p in sorted(d.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES]
