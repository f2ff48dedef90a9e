"""INT8 recipes: saved with the model, run as ``ort:int8@NAME`` by every subcommand, built from reused ranges."""

import json
from dataclasses import replace
from pathlib import Path

import onnx
import pytest

from core.cli import main
from core.errors import InputError
from core.model.convert import CalibrationMethod, Int8Options
from core.model.recipes import Recipe, RecipeBook
from core.model.store import ModelStore
from core.variants import Artefact, Int8Flavour, Precision, Runtime, Variant
from tests.helpers import quantized_in

KEEP8 = replace(Int8Options(max_images=16), float_nodes=("/model.8/",))


def test_variant_names_with_a_recipe():
    v = Variant.parse("ort:int8@keep-8")
    assert (v.runtime, v.precision, v.recipe) == (Runtime.ORT, Precision.INT8, "keep-8")
    assert str(v) == "ort:int8@keep-8" and v.base == Variant.parse("ort:int8") and v.spec is v.base.spec
    assert Variant.parse(str(v)) == v and v != v.base
    with pytest.raises(InputError, match="INT8 variants only"):
        Variant.parse("ort:fp32@keep-8")
    with pytest.raises(InputError, match="not valid"):
        Variant.parse("ort:int8@bad name")
    with pytest.raises(InputError):
        Variant.parse("ort:int8@../etc")
    with pytest.raises(InputError, match="unknown variant"):
        Variant.parse("ort:int4@x")


def test_recipe_book_round_trip_and_errors(tmp_path, calib_dir):
    book = RecipeBook(tmp_path / "recipes")
    assert book.names() == []
    recipe = Recipe("keep8", KEEP8, str(calib_dir), note="by hand")
    book.save(recipe)
    back = book.get("keep8")
    assert back.options == KEEP8 and back.calib_dir == str(calib_dir) and "float: model.8" in back.describe()
    with pytest.raises(InputError, match="exists already"):
        book.save(recipe)
    assert book.unique_name("keep8") == "keep8-2"
    with pytest.raises(InputError, match="saved recipes: keep8"):
        book.get("other")
    (book.folder / "broken.json").write_text('{"name": "broken", "options": {"bits": 3}}')
    with pytest.raises(InputError, match="not a valid recipe"):
        book.get("broken")
    assert [r.name for r in book.all()] == ["keep8"]  # the damaged file is skipped when listing
    book.delete("keep8")
    assert book.names() == ["broken"]


@pytest.fixture(scope="module")
def recipe_store(store, tmp_path_factory) -> ModelStore:
    """A store of its own (the recipes folder is per model and cache): keep8 saved in it."""
    cache = tmp_path_factory.mktemp("recipes-cache")
    s = ModelStore(store.source, cache_root=cache, calib_dir=store.calib_dir, int8=Int8Options(max_images=16))
    s.recipes.save(Recipe("keep8", KEEP8, str(store.calib_dir)))
    s.recipes.save(Recipe("trt8", replace(KEEP8, flavour=Int8Flavour.TRT), str(store.calib_dir)))
    return s


def test_recipe_file_keeps_its_block_in_float_and_reuses_ranges(recipe_store, tmp_path):
    default = recipe_store.variant_artefact(Variant.parse("ort:int8"))
    ranges = recipe_store.ranges_path(recipe_store.int8)
    assert ranges.is_file()  # the calibration run left its ranges for the next candidates
    stamp = ranges.stat().st_mtime_ns
    keep8 = recipe_store.variant_artefact(Variant.parse("ort:int8@keep8"))
    assert keep8 != default and ranges.stat().st_mtime_ns == stamp  # same calibration setting: reused
    assert quantized_in(onnx.load(str(default)), "/model.8/")  # the default quantizes model.8 ...
    assert not quantized_in(onnx.load(str(keep8)), "/model.8/")  # ... the recipe keeps it in float
    assert quantized_in(onnx.load(str(keep8)), "/model.7/")  # and only it

    # the same recipe calibrated from scratch in another cache gives the same file, byte for byte
    fresh = ModelStore(recipe_store.source, cache_root=tmp_path, calib_dir=recipe_store.calib_dir)
    again = fresh.artefact(Artefact.ONNX_INT8_CPU, int8=KEEP8, calib_dir=recipe_store.calib_dir)
    assert again.read_bytes() == keep8.read_bytes()

    other = replace(KEEP8, method=CalibrationMethod.PERCENTILE)
    assert recipe_store.ranges_path(other) != ranges  # another setting, other ranges


def test_recipe_mismatches_are_named(recipe_store):
    with pytest.raises(InputError, match=r"trt-flavour INT8 file.*trt:int8 or ort-trt:int8@trt8"):
        recipe_store.variant_path(Variant.parse("ort:int8@trt8"))
    assert "no INT8 recipe named 'nope'" in recipe_store.missing_input(Variant.parse("ort:int8@nope"))
    assert recipe_store.missing_input(Variant.parse("ort:int8@keep8")) == ""
    # a trt-flavour recipe builds the TensorRT-format file
    path = recipe_store.variant_path(Variant.parse("trt:int8@trt8"))
    assert path.name.startswith("int8-trt-")


def test_clearing_the_cache_keeps_recipes(recipe_store, tmp_path):
    s = ModelStore(recipe_store.source, cache_root=tmp_path, calib_dir=recipe_store.calib_dir)
    s.recipes.save(Recipe("keep8", KEEP8, str(recipe_store.calib_dir)))
    s.fp32()
    s.clear()
    assert s.recipes.names() == ["keep8"] and not s.path_for(Artefact.ONNX_FP32).exists()


def _cli(capsys, *args: str) -> dict:
    code = main(list(args))
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out) if "--json" in args else {"text": out.out}


def test_every_subcommand_runs_a_saved_recipe(recipe_store, capsys, bus_jpg, val_dir, videos_dir, tmp_path):
    model = [
        "--model", str(recipe_store.source.path), "--cache-dir", str(recipe_store.cache_root),
        "--calib", str(recipe_store.calib_dir), "--calib-images", "16",
    ]  # fmt: skip
    name = "ort:int8@keep8"
    listed = _cli(capsys, "recipes", *model, "--json")
    assert [r["variant"] for r in listed["recipes"]] == ["ort:int8@keep8", "trt:int8@trt8"]
    expected = recipe_store.variant_path(Variant.parse(name))

    detect = _cli(capsys, "detect", str(bus_jpg), *model, "--variant", name, "--json")
    assert detect["variant"] == name and len(detect["results"][0]["detections"]) >= 3
    compare = _cli(capsys, "compare", str(bus_jpg), *model, "--variants", f"ort:int8,{name}", "--runs", "1",
                   "--warmup", "0", "--json")  # fmt: skip
    assert [v["variant"] for v in compare["images"][0]["variants"]][:2] == ["ort:int8", name]
    bench = _cli(capsys, "bench", *model, "--variants", name, "--warmup", "0", "--iterations", "2", "--json")
    assert [v["variant"] for v in bench["variants"]] == [name]
    ev = _cli(capsys, "eval", *model, "--data", str(val_dir), "--variants", name, "--max-images", "4", "--json")
    assert [v["variant"] for v in ev["variants"]] == [name] and ev["variants"][0]["images"] == 4
    clip = videos_dir / "car-detection.mp4"
    video = _cli(capsys, "video", str(clip), *model, "--variants", name, "--max-frames", "3",
                 "-o", str(tmp_path / "v.mp4"), "--json")  # fmt: skip
    assert name in json.dumps(video) and (tmp_path / "v.mp4").stat().st_size > 0
    built = _cli(capsys, "convert", *model, "--variant", name)
    assert Path(built["text"].strip()) == expected
    drift = _cli(capsys, "drift", *model, "--variant", name, "--images", "1", "--json")
    assert drift["variant"] == name and drift["file"] == expected.name
    blocks = {b["block"]: b for b in drift["blocks"]}
    # kept in float: only its output is quantized (for model.9, which reads it in INT8)
    assert blocks["model.8"]["tensors"] == 1 and blocks["model.7"]["tensors"] > 1

    assert main(["recipes", *model, "--delete", "keep8"]) == 0
    assert "trt:int8@trt8" in capsys.readouterr().out
    assert main(["detect", str(bus_jpg), *model, "--variant", name]) == 2
    assert "no INT8 recipe named 'keep8'" in capsys.readouterr().err
