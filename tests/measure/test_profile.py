"""Where the time goes: per-block profiles from each runtime's own profiler, and what they add up to."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.measure.profile import AGREE, group_blocks, profile_variants
from core.runtime.backends import NodeTime
from tests.conftest import runnable


def test_nodes_group_into_blocks_with_their_kinds_kernels_and_precisions():
    nodes = [
        NodeTime("ReorderInput_1", "ReorderInput", "reorder", "", 0.5),  # before any block: joins the first one
        NodeTime("/model.0/conv/Conv", "QLinearConv", "compute", "int8", 2.0),
        NodeTime("/model.0/act/Sigmoid", "QLinearSigmoid", "compute", "int8", 1.0),
        NodeTime("ReorderOutput_7", "ReorderOutput", "reorder", "", 0.25),  # named by the runtime: joins model.0
        NodeTime("/model.1/conv/Conv_quant", "QuantizeLinear", "quantize", "int8", 0.75),
        NodeTime("/model.1/conv/Conv", "Conv", "compute", "fp32", 3.0),
    ]
    blocks = group_blocks(nodes, module_names=False)
    assert [b.block for b in blocks] == ["model.0", "model.1"]
    first, second = blocks
    assert first.ms == pytest.approx(3.75) and first.split == {"compute": 3.0, "quantize": 0.0, "reorder": 0.75}
    assert first.kernels == {"ReorderInput": 1, "QLinearConv": 1, "QLinearSigmoid": 1, "ReorderOutput": 1}
    assert first.precisions == {"int8": 2} and first.module == "Conv"
    assert second.split["quantize"] == 0.75 and second.precisions == {"fp32": 1}


@pytest.fixture(scope="module")
def profiled(store, detectors, bus_image):
    from core.runtime import BackendOptions
    from core.variants import Variant

    names = ["ort:fp32", "ort:fp16", "ort:int8", "ov:fp32", "ov:bf16", "torch:fp32"]
    # in turn: ONNX Runtime's idle sessions must not spin on the cores the others need (as the CLI opens them)
    chosen = [store.open_detector(Variant.parse(n), BackendOptions.for_turns(True)) for n in names if n in detectors]
    # PyTorch's OpenMP threads and the other runtimes' pools contend when they alternate on 2 busy cores:
    # the baseline is profiled on its own
    torch = [d for d in chosen if d.variant.runtime.value == "torch"]
    others = [d for d in chosen if d not in torch]
    try:
        found = profile_variants(others, bus_image, runs=10) + (
            profile_variants(torch, bus_image, runs=10) if torch else []
        )
        yield {p.variant: p for p in found}
    finally:
        for det in chosen:
            det.close()


@pytest.mark.parametrize("variant", ["ort:fp32", "ort:int8", "ov:fp32", "ov:bf16", "torch:fp32"])
def test_every_variant_has_its_blocks_and_they_add_up_to_the_graph(profiled, detectors, variant):
    runnable(detectors, variant)
    p = profiled[variant]
    assert len(p.blocks) >= 20 and all(b.ms >= 0 for b in p.blocks)
    assert {b.module for b in p.blocks} >= {"Conv", "C3", "SPPF", "Upsample", "Concat", "Detect"}
    assert p.adds_up == (abs(p.blocks_ms / p.graph_ms - 1) <= AGREE)
    assert 0.5 < p.agreement < 1.5, p.to_dict()  # the node times are the graph's; within 15 %: README's run
    assert p.letterbox_ms > 0 and p.nms_ms > 0


def test_what_really_ran_counts_convolutions_and_flags_fp16_that_ran_in_fp32(profiled):
    words = {p.variant: p.coverage_words() for p in profiled.values()}
    assert words["ort:fp32"] == "ort:fp32: 60 of 60 convolutions ran in fp32"
    # the recipe keeps the stem (model.0) and the Detect convs (model.24) in float
    assert words["ort:int8"] == "ort:int8: 56 of 60 convolutions ran in int8; not in int8: model.0, model.24"
    # ONNX Runtime's CPU provider turns the FP16 file back into FP32 (casts at the edges): flagged
    assert (
        words["ort:fp16"].startswith("ort:fp16: 0 of 60 convolutions ran in fp16") and "below 90 %" in words["ort:fp16"]
    )
    assert words["torch:fp32"] == ""  # PyTorch's blocks do not name their convolutions' precision
    if "ov:bf16" in profiled:
        assert words["ov:bf16"] == "ov:bf16: 60 of 60 convolutions ran in bf16"


def test_int8_shows_its_quantize_share_and_bf16_its_precision(profiled, detectors):
    assert profiled["ort:int8"].split()["quantize"] > 0 and profiled["ort:fp32"].split()["quantize"] == 0
    int8_kernels = {k for b in profiled["ort:int8"].blocks for k in b.kernels}
    assert "QLinearConv" in int8_kernels or "QLinearConcat" in int8_kernels
    if "ov:bf16" in profiled:
        counts = {}
        for b in profiled["ov:bf16"].blocks:
            for precision, n in b.precisions.items():
                counts[precision] = counts.get(precision, 0) + n
        assert counts.get("bf16", 0) > counts.get("fp32", 0), counts


@pytest.mark.slow
def test_profile_command_prints_json_with_the_words_and_the_report_shows_it(
    yolov5n_pt, calib_dir, session_cache, bus_jpg, tmp_path
):
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(session_cache))
    done = subprocess.run(
        [sys.executable, "-m", "core", "profile", str(bus_jpg), "--model", str(yolov5n_pt), "--calib", str(calib_dir),
         "--variants", "ort:fp32,ort:int8", "--runs", "5", "--json"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert doc["kind"] == "profile" and [v["variant"] for v in doc["variants"]] == ["ort:fp32", "ort:int8"]
    for v in doc["variants"]:
        assert len(v["blocks"]) >= 20 and v["blocks_ms"] > 0 and v["graph_ms"] > 0 and "runs_on" in v
    assert doc["variants"][1]["split_ms"]["quantize"] > 0
    assert any(w.startswith("ort:int8 against ort:fp32: ") for w in doc["words"])
    assert doc["system"]["cpu_features"] is not None
    (tmp_path / "profile.json").write_text(done.stdout)
    out = tmp_path / "r.html"
    report = subprocess.run([sys.executable, "-m", "core", "report", str(tmp_path / "profile.json"), "--out", str(out)],
                            capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    html = (tmp_path / "r.html").read_text()
    assert "Where the time goes" in html and "ort:int8 against ort:fp32: " in html
    assert f"blocks sum to {doc['variants'][1]['blocks_ms']:.1f} ms" in html  # the same figure as the JSON
    memory = {f["variant"]: f for f in doc["footprint"]}
    fp32 = memory["ort:fp32"]  # a 7.2 MB file: tens of MB of weights, buffers and arenas, not hundreds
    assert 5 < fp32["load_mb"] < 400 and fp32["load_mb"] <= fp32["peak_mb"] < 800 and fp32["file_mb"] > 5
    assert f"ort:fp32: file {fp32['file_mb']:.1f} MB; loading adds {fp32['load_mb']:.0f} MB" in html


@pytest.mark.slow
def test_bench_memory_puts_each_variant_s_footprint_in_its_json(yolov5n_pt, session_cache):
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(session_cache))
    done = subprocess.run(
        [sys.executable, "-m", "core", "bench", "--model", str(yolov5n_pt), "--variants", "ort:fp32,ov:fp32",
         "--warmup", "1", "--iterations", "3", "--memory", "--json"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    memory = {f["variant"]: f for f in json.loads(done.stdout)["footprint"]}
    assert set(memory) == {"ort:fp32", "ov:fp32"}
    assert all(5 < f["load_mb"] <= f["peak_mb"] < 800 and f["file_mb"] > 5 for f in memory.values())
