"""What the app ships with (assets/): small, licensed, readable, and offered by the pages."""

from __future__ import annotations

from pathlib import Path

from core.data.images import load_image
from core.data.samples import sample_images
from core.video import probe
from core.video.demo import demo_clip

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def test_every_shipped_file_is_small_and_has_its_licence_line():
    licences = (ASSETS / "README.md").read_text()
    shipped = [p for p in ASSETS.rglob("*") if p.is_file() and p.name != "README.md"]
    assert {p.name for p in shipped} >= {"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "logo.svg", "favicon.png"}
    # no videos or weights in git, but the one default model the first run needs offline (issue: first five minutes)
    bundled = ASSETS / "models" / "yolov5n.pt"
    assert not [p for p in shipped if p.suffix in (".mp4", ".onnx", ".pt") and p != bundled]
    for p in shipped:
        assert p.stat().st_size < (5_000_000 if p == bundled else 1_000_000), p
        assert f"`{p.relative_to(ASSETS)}`" in licences, f"{p} has no licence line in assets/README.md"


def test_defaults_come_first_and_the_project_samples_are_offered():
    names = [p.name for p in sample_images()]
    assert names[:2] == ["bus.jpg", "zidane.jpg"]  # the pages' default pictures
    assert {"astronaut.jpg", "chelsea.jpg", "coffee.jpg"} <= set(names)
    for p in sample_images():
        assert load_image(p).ndim == 3


def test_the_demo_clip_is_made_once_from_the_project_pictures_and_decodes(tmp_path):
    clip = demo_clip(tmp_path)
    info = probe(clip)
    assert info.codec == "h264" and info.frame_count == 90 and (info.width, info.height) == (640, 360)
    stamp = clip.stat().st_mtime_ns
    assert demo_clip(tmp_path) == clip and clip.stat().st_mtime_ns == stamp  # kept, not made again
