"""Issue 5, images: every hostile or unusual picture in one upload, through the engine, the CLI and the app.

Each file gets either detections or one clear line naming it; the other files of the same upload still
get their results. The decoding cases one by one are in tests/data/test_images.py; here they travel together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.images import load_image
from core.data.samples import sample_image
from core.errors import InputError

from ..helpers import hostile_images

ROOT = Path(__file__).resolve().parents[2]
BUS = ["bus", "person", "person", "person"]


@pytest.fixture(scope="module")
def cases(bus_jpg: Path) -> dict[str, tuple[bytes, str | None]]:
    return hostile_images(bus_jpg)


@pytest.fixture(scope="module")
def upload_dir(cases, bus_jpg: Path, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("upload")
    for name, (data, _) in cases.items():
        (d / name).write_bytes(data)
    return d


def _classes(dets) -> list[str]:
    return sorted(r["class_name"] for r in dets.to_records())


def test_each_image_gives_detections_or_one_clear_message(cases, detectors, bus_image):
    det = detectors["ort:fp32"]
    reference = det.detect(bus_image).detections
    for name, (data, message) in cases.items():
        if message is not None:
            with pytest.raises(InputError) as err:
                load_image(data, name)
            text = str(err.value)
            assert text.startswith(f"{name}: ") and message in text and "\n" not in text, text
            continue
        image = load_image(data, name)
        dets = det.detect(image).detections
        h, w = image.shape[:2]
        assert (dets.xyxy >= 0).all() and (dets.xyxy[:, [0, 2]] <= w).all() and (dets.xyxy[:, [1, 3]] <= h).all()
        if name in ("one-pixel.png", "strip-4000x1.png"):
            assert len(dets) == 0 and image.shape in ((1, 1, 3), (1, 4000, 3))
        elif name in ("rgba.png", "palette.png", "cmyk.jpg", "exif-rotated.jpg"):
            assert _classes(dets) == BUS, name
        else:  # grayscale and 16-bit: the same scene without colour, the bus and its people still found
            assert {"bus", "person"} <= set(_classes(dets)), name
    # EXIF orientation: the boxes land on the upright picture the user sees, where they are on bus.jpg
    upright = load_image(cases["exif-rotated.jpg"][0], "exif-rotated.jpg")
    assert upright.shape == bus_image.shape
    rotated = det.detect(upright).detections
    assert np.abs(rotated.xyxy - reference.xyxy).max() < 3.0


def test_cli_detect_reports_each_bad_file_and_detects_on_the_others(upload_dir, yolov5n_pt, session_cache, cases):
    files = [*sorted(upload_dir.iterdir()), sample_image("zidane.jpg")]
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(session_cache))
    p = subprocess.run(
        [sys.executable, "-m", "core", "detect", *map(str, files), "--model", str(yolov5n_pt), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 1, p.stderr  # some failed, the others have results
    results = {Path(r["image"]).name: r for r in json.loads(p.stdout)["results"]}
    assert set(results) == {f.name for f in files}
    for name, (_, message) in cases.items():
        if message is None:
            assert "detections" in results[name], results[name]
        else:
            assert message in results[name]["error"] and results[name]["error"].startswith(name)
    assert sorted(d["class_name"] for d in results["exif-rotated.jpg"]["detections"]) == BUS
    assert sorted(d["class_name"] for d in results["zidane.jpg"]["detections"]) == ["person", "person", "tie"]
    failed = sum(m is not None for _, m in cases.values())
    assert f"error: {failed} of {len(files)} images could not be read" in p.stderr


def test_app_compare_images_one_upload_with_every_case(app_env, cases):
    at = AppTest.from_file(str(ROOT / "pages" / "compare_images.py"), default_timeout=600)
    at.run()
    at.file_uploader[0].set_value([(name, data, "application/octet-stream") for name, (data, _) in cases.items()])
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    for name, (_, message) in cases.items():
        if message is not None:
            assert any(w.startswith(f"{name}: ") and message in w for w in warnings), (name, warnings)
    table = at.dataframe[0].value
    good = [n for n, (_, m) in cases.items() if m is None]
    assert sorted(set(table["image"])) == sorted(good)  # every readable picture has its rows
    fp32 = table[table["variant"] == "ort:fp32"].set_index("image")["objects"]
    assert fp32["exif-rotated.jpg"] == 4 and fp32["rgba.png"] == 4 and fp32["one-pixel.png"] == 0
    assert len(at.selectbox[-1].options) == len(good)


def test_app_shows_the_same_picture_uploaded_twice_once(app_env, bus_jpg):
    at = AppTest.from_file(str(ROOT / "pages" / "compare_images.py"), default_timeout=600)
    at.run()
    data = bus_jpg.read_bytes()
    at.file_uploader[0].set_value([("bus.jpg", data, "image/jpeg"), ("copy of bus.jpg", data, "image/jpeg")])
    at.run()
    assert not at.exception
    assert any("same picture as bus.jpg" in c.value for c in at.caption)
    assert list(at.dataframe[0].value["image"]) == ["bus.jpg", "bus.jpg"]  # one image, two variants
