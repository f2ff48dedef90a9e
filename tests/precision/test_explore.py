"""The precision explorer on the real model: drift, sensitivity, search, split, and the saved recipe."""

import random
from dataclasses import replace

import onnx
import pytest

from core.data.dataset import load_dataset
from core.errors import InputError
from core.model.convert import CalibrationMethod, Int8Options
from core.model.store import ModelStore
from core.precision.explorer import Calibration, ExploreSettings, explore, explore_text, save_best, split_items
from core.variants import Int8Flavour, Variant
from tests.helpers import quantized_in


def test_split_is_deterministic_and_disjoint(val_dir):
    items = load_dataset(val_dir).items
    search, report = split_items(items, 0.5)
    assert len(search) == 64 and len(report) == 64
    assert not {i.image for i in search} & {i.image for i in report}
    shuffled = items[:]
    random.Random(3).shuffle(shuffled)
    assert split_items(shuffled, 0.5) == (search, report)  # the listing order does not matter
    assert [len(x) for x in split_items(items, 0.25)] == [32, 96]
    with pytest.raises(InputError, match="at least 2 images"):
        split_items(items[:1], 0.5)


def test_settings_refuse_nonsense():
    with pytest.raises(InputError, match="one target"):
        ExploreSettings(target_drop=0.3, target_speedup=1.2)
    with pytest.raises(InputError, match="search split"):
        ExploreSettings(search_split=1.0)
    with pytest.raises(InputError, match="accuracy only"):
        ExploreSettings(flavour=Int8Flavour.TRT, target_speedup=1.2)


@pytest.fixture(scope="module")
def explored(store, val_dir, tmp_path_factory):
    """A small but complete run: 24 labelled images, the 2 lowest-SQNR blocks, one extra calibration setting."""
    s = ModelStore(store.source, cache_root=tmp_path_factory.mktemp("explore"), calib_dir=store.calib_dir,
                   int8=Int8Options(max_images=16))  # fmt: skip
    settings = ExploreSettings(
        target_drop=0.3, drift_images=2, fp16_images=1, blocks=2, max_images=24, search_steps=2, timing_calls=5,
        calibrations=(Calibration(CalibrationMethod.MINMAX, 8),),
    )  # fmt: skip
    seen: list[float] = []
    result = explore(s, load_dataset(val_dir), settings, lambda f, m: seen.append(f))
    return s, result, seen


def test_explore_reports_every_part(explored):
    _, result, seen = explored
    assert seen[-1] == 1.0 and seen == sorted(seen)  # progress only moves forward
    d = result.to_dict()
    assert d["splits"]["search"] == 12 and d["splits"]["report"] == 12 and "sha256" in d["splits"]["rule"]
    blocks = {b["block"]: b["module"] for b in d["blocks"]}
    assert blocks["model.8"] == "C3" and blocks["model.9"] == "SPPF" and blocks["model.1"] == "Conv"
    assert "model.24" not in blocks  # the Detect convs stay float by default: nothing to drift
    ops = {x["tensor"]: x["op"] for x in d["layers"]}
    assert ops["/model.8/cv3/act/Mul_output_0"] == "Mul" and ops["/model.9/m/MaxPool_output_0"] == "MaxPool"
    worst = [b["block"] for b in d["blocks"]][:2]
    assert [x["block"] for x in d["sensitivity"]] == worst
    # beside each block, what INT8 saves in it by the profiler: what keeping it in float gives back at most
    assert all(isinstance(x["int8_saves_ms"], float) for x in d["sensitivity"])
    assert sum(result.int8_saves_ms.values()) > 0 and len(result.int8_saves_ms) >= 20  # INT8 is faster overall
    assert all("INT8 saves" in r.words() for r in result.sensitivity_rows())
    kinds = [c["kind"] for c in d["candidates"]]
    assert kinds[0] == "default" and kinds.count("sensitivity") == 2 and "calibration" in kinds
    assert all(c["p50_ms"] > 0 and c["speedup"] > 0 for c in d["candidates"])
    assert any(c["pareto"] for c in d["candidates"])
    assert d["fp32"]["p50_ms"] > 0 and d["fp16"] and d["fp16"][0]["max_abs"] > 0
    best = d["best"]
    assert best is not None and best["report_images"] == 12
    lo, hi = best["delta_points_report_ci95"]
    assert lo <= best["delta_points_report"] <= hi
    text = explore_text(result)
    assert "Sensitivity" in text and "Chosen:" in text and "report split" in text


def test_sensitivity_files_keep_their_block_in_float(explored):
    _, result, _ = explored
    for c in result.sensitivity():
        model = onnx.load(str(c.path))
        assert not quantized_in(model, f"/{c.block}/"), c.block
    default = onnx.load(str(result.default.path))
    assert all(quantized_in(default, f"/{c.block}/") for c in result.sensitivity())


def test_saved_best_runs_as_a_variant(explored, bus_image):
    store, result, _ = explored
    recipe = save_best(store, result)
    assert recipe.name.startswith("auto-cpu-drop0.3") and result.best.variant == f"ort:int8@{recipe.name}"
    assert store.recipes.get(recipe.name).options == result.best.candidate.options
    variant = Variant.parse(result.best.variant)
    assert store.variant_path(variant) == result.best.candidate.path  # the file the search measured
    with store.open_detector(variant) as det:
        assert len(det.detect(bus_image).detections) >= 3
    again = save_best(store, replace(result, best=result.best))
    assert again.name != recipe.name  # a second save never overwrites the first


def test_stop_keeps_what_was_measured(store, val_dir, tmp_path):
    s = ModelStore(store.source, cache_root=tmp_path, calib_dir=store.calib_dir, int8=Int8Options(max_images=8))
    calls = []

    def stop_after_drift() -> bool:
        calls.append(1)
        return len(calls) > 2

    settings = ExploreSettings(drift_images=1, fp16_images=1, max_images=8, blocks=1, timing_calls=5)
    result = explore(s, load_dataset(val_dir), settings, should_stop=stop_after_drift)
    assert result.stopped and result.drift is not None and result.best is None
    assert "stopped" in result.notes[0]


def test_trt_flavour_is_searched_for_accuracy_only(store, val_dir, tmp_path):
    from core.precision.explorer import TRT_NOTE
    from core.runtime.onnx_file import read_onnx

    s = ModelStore(store.source, cache_root=tmp_path, calib_dir=store.calib_dir, int8=Int8Options(max_images=8))
    settings = ExploreSettings(flavour=Int8Flavour.TRT, target_drop=0.5, drift_images=1, fp16_images=0,
                               max_images=8, blocks=1, search_steps=1, calibrations=())  # fmt: skip
    result = explore(s, load_dataset(val_dir), settings)
    d = result.to_dict()
    assert d["flavour"] == "trt" and d["flavour_note"] == TRT_NOTE and any(TRT_NOTE in n for n in d["notes"])
    assert all(c["p50_ms"] is None and c["speedup"] is None for c in d["candidates"])  # no CPU speed shown
    assert all(x["int8_saves_ms"] is None for x in d["sensitivity"])  # nor a CPU profile
    assert read_onnx(result.default.path).int8_flavour is Int8Flavour.TRT
    top = max(c["delta_points"] for c in d["candidates"])
    assert [c["pareto"] for c in d["candidates"]] == [c["delta_points"] == top for c in d["candidates"]]
    assert d["best"] is not None and d["best"]["speedup"] is None and "speed needs a GPU" in explore_text(result)
    recipe = save_best(s, result)
    assert result.best.variant == f"trt:int8@{recipe.name}"  # what TensorRT runs; not ort:int8
