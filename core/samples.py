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
