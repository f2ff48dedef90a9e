"""Image comparison (core.measure.compare): one engine behind the Compare images page and ``python -m core compare``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InputError
from core.measure.compare import ImageComparison, read_images
from core.runtime.processing import PostParams
from core.variants import Variant

ROOT = Path(__file__).resolve().parents[2]
FP32, INT8 = Variant.parse("ort:fp32"), Variant.parse("ort:int8")


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def samples(bus_jpg: Path) -> list[Path]:
    return [bus_jpg, bus_jpg.with_name("zidane.jpg")]


def test_read_images_keeps_order_drops_repeats_and_names_bad_files(samples):
    bus, zidane = (p.read_bytes() for p in samples)
    decoded: dict = {}
    got = read_images([("a.jpg", bus), ("junk.png", b"nope"), ("b.jpg", zidane), ("again.jpg", bus)], decoded)
    assert [im.name for im in got.images] == ["a.jpg", "b.jpg"]
    assert got.duplicates == ["again.jpg is the same picture as a.jpg; shown once."]
    assert len(got.errors) == 1 and got.errors[0].startswith("junk.png: not an image")
    assert set(decoded) == {im.key for im in got.images}
    again = read_images([("b.jpg", zidane)], decoded)  # only the current pictures stay decoded
    assert set(decoded) == {again.images[0].key}


def test_thresholds_rerun_only_postprocessing_and_reference_agrees_with_itself(detectors, samples):
    images = read_images([(p.name, p.read_bytes()) for p in samples]).images
    dets = [detectors["ort:fp32"], detectors["ort:int8"]]
    cache: dict = {}
    comparison = ImageComparison(dets, FP32, cache=cache, runs=3)
    assert ImageComparison(dets, FP32).runs >= 5  # the page's and the CLI's default
    low = comparison.result(images, PostParams(conf=0.25))
    assert len(cache) == 4
    high = comparison.result(images, PostParams(conf=0.7))
    assert len(cache) == 4  # no new inference
    for lo, hi in zip(low.images, high.images, strict=True):
        assert lo.of(FP32).agreement is None
        assert len(hi.of(FP32).detections) < len(lo.of(FP32).detections)
        assert lo.of(INT8).latency.runs == 3 and lo.of(INT8).latency.p10 <= lo.of(INT8).latency.p90
    with pytest.raises(InputError, match="not among the variants"):
        ImageComparison(dets[1:], FP32)


@pytest.mark.slow
def test_cli_compare_matches_detect_and_the_page(app_env, yolov5n_pt, calib_dir, session_cache, samples, tmp_path):
    common = ["--model", str(yolov5n_pt), "--calib", str(calib_dir)]
    p = cli("compare", *map(str, samples), *common, "--variants", "ort:fp32,ort:int8", "--runs", "2", "--json",
            "--save", str(tmp_path / "out"), cache=session_cache)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["reference"] == "ort:fp32"
    assert [Path(im["image"]).name for im in out["images"]] == ["bus.jpg", "zidane.jpg"]

    for variant in ("ort:fp32", "ort:int8"):  # the same detections as `detect` gives for each variant
        d = cli("detect", *map(str, samples), *common, "--variant", variant, "--json", cache=session_cache)
        assert d.returncode == 0, d.stderr
        detected = [r["detections"] for r in json.loads(d.stdout)["results"]]
        compared = [next(v for v in im["variants"] if v["variant"] == variant) for im in out["images"]]
        assert [c["detections"] for c in compared] == detected
        assert all(set(c["latency_ms"]) == {"p50", "p10", "p90", "runs"} and c["latency_ms"]["runs"] == 2
                   for c in compared)  # fmt: skip
    by_image = {Path(im["image"]).name: {v["variant"]: v for v in im["variants"]} for im in out["images"]}
    assert all(v["ort:fp32"]["agreement"] is None for v in by_image.values())
    assert by_image["bus.jpg"]["ort:int8"]["agreement"]["matched"] >= 3
    saved = sorted(f.name for f in (tmp_path / "out").iterdir())
    assert saved == [
        "01-bus.ort-fp32.jpg", "01-bus.ort-int8.diff.jpg", "01-bus.ort-int8.jpg",
        "02-zidane.ort-fp32.jpg", "02-zidane.ort-int8.diff.jpg", "02-zidane.ort-int8.jpg",
    ]  # fmt: skip

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "compare_images.py"), default_timeout=600)
    at.run()  # the page's default: the two sample images, ort:fp32 vs ort:int8
    assert not at.exception
    table = at.dataframe[0].value
    for row in table.itertuples(index=False):
        row = dict(zip(table.columns, row, strict=True))
        cli_row = by_image[row["image"]][row["variant"]]
        assert row["objects"] == len(cli_row["detections"])
        a = cli_row["agreement"]
        if a is None:
            assert row["variant"] == "ort:fp32"
            continue
        assert (row["matched"], row["missed"], row["extra"]) == (a["matched"], a["missed"], a["extra"])
        assert row["mean |Δconf|"] == pytest.approx(a["mean_abs_dconf"], abs=1e-4)


def test_the_headline_pools_every_image(detectors, samples):
    images = read_images([(p.name, p.read_bytes()) for p in samples]).images
    result = ImageComparison([detectors["ort:fp32"], detectors["ort:int8"]], FP32).result(images, PostParams())
    line = result.headline("ort:int8")
    boxes = sum(len(im.of(FP32).detections) for im in result.images)
    matched = sum(im.of(INT8).agreement.matched for im in result.images)
    assert line.startswith("ort:int8 — ") and "on 2 images" in line
    assert f"finds {matched} of ort:fp32's {boxes} boxes" in line and "at conf 0.25" in line
    assert "x) — faster than ort:fp32" in line or "x) — slower than ort:fp32" in line or "no measurable speed" in line
