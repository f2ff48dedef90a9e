"""Make assets/samples/demo-pan.mp4: a slow pan across the project's own sample images (public domain / CC0).

The clip ships with the app, so every install has a video to try without a download. Rerun after changing
the sample images: ``.venv/bin/python scripts/make_demo_clip.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.images import load_image  # noqa: E402
from core.samples import PROJECT_SAMPLES  # noqa: E402
from core.video import H264Writer  # noqa: E402

IMAGES = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")


def main(seconds: float = 6.0, fps: int = 15, w: int = 640, h: int = 360) -> Path:
    target = PROJECT_SAMPLES / "demo-pan.mp4"
    images = [load_image(PROJECT_SAMPLES / name) for name in IMAGES]
    per_image = int(seconds * fps / len(images))
    with H264Writer(target, fps, w, h) as out:
        for img in images:
            scale = max(w / img.shape[1], h / img.shape[0]) * 1.25
            big = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)))
            dy, dx = big.shape[0] - h, big.shape[1] - w
            for t in np.linspace(0.0, 1.0, per_image):
                y, x = round(dy * t), round(dx * (1 - t))
                out.write(np.ascontiguousarray(big[y : y + h, x : x + w]))
    print(f"{target}: {target.stat().st_size / 1e3:.0f} kB")
    return target


if __name__ == "__main__":
    main()
