"""The precision explorer on the real model: drift, fidelity, sensitivity, search, confirmation, the saved recipe."""

from dataclasses import replace

import onnx
import pytest

from core.data.dataset import load_dataset
from core.errors import InputError
from core.model.convert import CalibrationMethod, Int8Options
from core.model.store import ModelStore
from core.precision import versus
from core.precision.explorer import Calibration, ExploreSettings, _faster, explore, explore_text, save_best
from core.variants import Int8Flavour, Variant
from tests.helpers import quantized_in


def test_settings_refuse_nonsense(tmp_path):
    with pytest.raises(InputError, match="one target"):
        ExploreSettings(target_drop=0.3, target_speedup=1.2)
    with pytest.raises(InputError, match="at least 16 images"):
        ExploreSettings(fidelity_count=4)
    with pytest.raises(InputError, match="one source of fidelity images"):
        ExploreSettings(fidelity_video=tmp_path / "a.mp4", fidelity_images=tmp_path)
    with pytest.raises(InputError, match="accuracy only"):
        ExploreSettings(flavour=Int8Flavour.TRT, target_speedup=1.2)


@pytest.fixture(scope="module")
def explored(store, val_dir, videos_dir, tmp_path_factory):
    """A small but complete run: 48 frames of the Tokyo clip for fidelity, 24 labelled images to confirm, the 2
    lowest-SQNR blocks, one extra calibration setting."""
    s = ModelStore(store.source, cache_root=tmp_path_factory.mktemp("explore"), calib_dir=store.calib_dir,
                   int8=Int8Options(max_images=16))  # fmt: skip
    settings = ExploreSettings(
        target_drop=0.3, drift_images=2, fp16_images=1, blocks=2, max_images=24, search_steps=2, timing_calls=5,
        calibrations=(Calibration(CalibrationMethod.MINMAX, 8),),
        fidelity_video=videos_dir / "street_people_car_tokyo_360p.mp4", fidelity_count=48,
    )  # fmt: skip
    seen: list[float] = []
    result = explore(s, load_dataset(val_dir), settings, lambda f, m: seen.append(f))
    return s, result, seen


def test_explore_reports_every_part(explored):
    _, result, seen = explored
    assert seen[-1] == 1.0 and seen == sorted(seen)  # progress only moves forward
    d = result.to_dict()
    assert d["fidelity"]["images"] == 48 and "frames spread over street_people" in d["fidelity"]["source"]
    assert d["labelled"]["images"] == 24
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
    for x in d["sensitivity"]:  # every row: its change against the default, with the paired interval
        lo, hi = x["recovers_ci95"]
        assert lo <= x["recovers_points"] <= hi and x["measurable"] == (not lo <= 0 <= hi)
    kinds = [c["kind"] for c in d["candidates"]]
    assert kinds[0] == "default" and kinds.count("sensitivity") == 2 and "calibration" in kinds
    assert all(c["p50_ms"] > 0 and c["speedup"] > 0 for c in d["candidates"])
    for c in d["candidates"]:  # INT8 never agrees with FP32 better than FP32 itself, and each has its interval
        lo, hi = c["fidelity_ci95"]
        assert lo <= c["fidelity_points"] <= hi <= 0.0 + 1e-9 and c["fidelity_images"] == 48
    assert any(c["pareto"] for c in d["candidates"])
    front = [c for c in result.candidates if c.pareto]
    for a in front:  # no point of the front beats another measurably on fidelity without being slower
        for b in front:
            assert a is b or not (versus(a.scores, b.scores).lo > 0 and not _faster(a, b)), (a.label, b.label)
    assert d["fp32"]["p50_ms"] > 0 and d["fp32"]["map50_95_labelled"] > 0.2
    assert d["fp16"] and d["fp16"][0]["max_abs"] > 0
    best = d["best"]
    assert best is not None and best["labelled_images"] == 24 and best["why"]
    lo, hi = best["delta_points_labelled_ci95"]
    assert lo <= best["delta_points_labelled"] <= hi
    assert best["confirmed_on_labels"] == (-best["delta_points_labelled"] <= 0.3)
    text = explore_text(result)
    assert "Sensitivity" in text and "Chosen:" in text and "fidelity" in text and "labelled set" in text


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
                               max_images=8, blocks=1, search_steps=1, calibrations=(), fidelity_count=16)  # fmt: skip
    result = explore(s, load_dataset(val_dir), settings)
    d = result.to_dict()
    assert d["flavour"] == "trt" and d["flavour_note"] == TRT_NOTE and any(TRT_NOTE in n for n in d["notes"])
    assert all(c["p50_ms"] is None and c["speedup"] is None for c in d["candidates"])  # no CPU speed shown
    assert all(x["int8_saves_ms"] is None for x in d["sensitivity"])  # nor a CPU profile
    assert read_onnx(result.default.path).int8_flavour is Int8Flavour.TRT
    most = max(result.candidates, key=lambda c: c.fidelity.value)
    assert most.pareto and d["fidelity"]["images"] == 16  # 16 of coco128's images the 8 calibration ones leave
    assert "calibration does not use" in d["fidelity"]["source"]
    assert d["best"] is not None and d["best"]["speedup"] is None and "speed needs a GPU" in explore_text(result)
    recipe = save_best(s, result)
    assert result.best.variant == f"trt:int8@{recipe.name}"  # what TensorRT runs; not ort:int8


def test_fidelity_is_100_for_fp32_and_every_difference_has_its_paired_interval(detectors, videos_dir):
    from core.precision.fidelity import FidelitySet, fidelity_images, versus

    frames, source = fidelity_images(24, video=videos_dir / "car-detection.mp4")
    assert len(frames) == 24 and source == "24 frames spread over car-detection.mp4"
    fid = FidelitySet(frames, source, detectors["ort:fp32"])
    fp32 = fid.score(detectors["ort:fp32"])
    assert fp32.value == pytest.approx(100.0) and fp32.missed == fp32.extra == 0
    assert versus(None, fp32).value == pytest.approx(0.0)
    int8 = fid.score(detectors["ort:int8"])
    gap = versus(None, int8)
    assert gap.lo <= gap.value <= gap.hi and gap.value < 0  # INT8 misses or moves some of FP32's boxes
    assert versus(int8, int8).value == 0 and versus(int8, int8).holds_zero  # paired: no difference with itself
    assert int8.matched + int8.missed == fp32.matched  # every FP32 box is either found or missed


def test_fidelity_never_uses_the_images_calibration_reads(val_dir):
    from core.model.convert import list_images
    from core.precision.fidelity import fidelity_files

    folder = list_images(val_dir)
    files, words = fidelity_files(500, calib_dir=val_dir, calib_used=100)
    assert files == folder[100:] and "28 images of the calibration folder" in words
    labelled = [val_dir / "images" / "extra.jpg"]  # topped up from the labelled set when too few are left
    files, words = fidelity_files(500, calib_dir=val_dir, calib_used=100, labelled=[*folder[:3], *labelled])
    assert files == [*folder[100:], *labelled] and "1 of the labelled set's images" in words
    files, words = fidelity_files(10, folder=val_dir, calib_dir=val_dir, calib_used=120)
    assert files == folder[120:] and "none that calibration uses" in words


def test_a_block_whose_interval_holds_zero_says_no_measurable_difference():
    from core.measure.bootstrap import Interval
    from core.precision.explorer import BlockSensitivity

    row = BlockSensitivity("model.8", Interval(-1.0, -1.5, -0.5), Interval(0.1, -0.2, 0.4), 20.0, 0.5)
    assert "no measurable difference" in row.words() and not row.measurable
    row = BlockSensitivity("model.8", Interval(-0.5, -0.9, -0.1), Interval(0.5, 0.2, 0.8), 20.0, 0.5)
    assert row.words().startswith("keeping model.8 in float changes fidelity by +0.50 points") and row.measurable
