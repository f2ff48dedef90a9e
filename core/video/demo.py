"""The demo clip every install has: a slow pan across the project's own sample pictures (no download)."""

from __future__ import annotations

from pathlib import Path

from core.data import PROJECT_SAMPLES

DEMO_CLIP = "demo-pan.mp4"


DEMO_IMAGES = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")  # the project's own pictures (assets/samples)


def demo_clip(directory: Path, seconds: float = 6.0, fps: int = 15, size: tuple[int, int] = (640, 360)) -> Path:
    """A 6 s clip panning slowly across the project's sample pictures, so every install has a video to try
    without a download. Made once into ``directory`` (the cache), under a lock, with the app's H.264 writer."""
    import cv2
    import numpy as np

    from core.cache import file_lock
    from core.data import load_image
    from core.video import H264Writer

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
