"""OpenVINO and BF16: what really ran, what this CPU can do, and what a user reads when it cannot."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.errors import RuntimeUnavailableError
from core.runtime import availability
from core.runtime.cpu import CpuFeatures, cpu_features, read_cpu_flags
from core.variants import Precision, Runtime, Variant
from tests.conftest import runnable

ZEN3 = "flags\t\t: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2 vaes vpclmulqdq"
ZEN4 = ZEN3 + " avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx512vbmi"


def test_the_cpu_s_instruction_sets_are_read_not_assumed():
    zen3, zen4 = read_cpu_flags(ZEN3), read_cpu_flags(ZEN4)
    assert zen3.names == ["avx2"] and not zen3.vnni and not zen3.bf16
    assert zen3.summary() == "AVX2" and "no AVX512_BF16 or AMX" in zen3.bf16_reason()
    assert zen4.names == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"] and zen4.vnni and zen4.bf16
    assert zen4.summary() == "AVX2, AVX-512, VNNI, BF16" and zen4.bf16_reason() == ""
    assert read_cpu_flags("processor : 0\nflags : avx2 avx_vnni amx_tile amx_bf16 amx_int8").bf16
    unknown = read_cpu_flags("")
    assert not unknown.known and not unknown.bf16 and "could not be read" in unknown.bf16_reason()
    here = cpu_features()  # this machine's, whatever it is: the same answer every other part of the engine gets
    with open("/proc/cpuinfo") as f:
        assert here.known and ("avx2" in here.names) == (" avx2" in f.read())


def test_without_native_bf16_the_bf16_variants_are_unavailable_with_the_reason(monkeypatch, store):
    no_bf16 = CpuFeatures(frozenset({"avx2", "fma"}))
    monkeypatch.setattr("core.runtime.backends.openvino.cpu_features", lambda: no_bf16)
    monkeypatch.setattr("core.runtime.backends.torch.cpu_features", lambda: no_bf16)
    for runtime in (Runtime.OV, Runtime.TORCH):
        status = availability(runtime, Precision.BF16)
        assert not status and "no AVX512_BF16 or AMX" in status.reason and "emulate" in status.reason
        assert availability(runtime, Precision.FP32)  # the runtime itself still runs
        with pytest.raises(RuntimeUnavailableError, match="no AVX512_BF16"):  # never silently run in FP32
            store.open_detector(Variant(runtime, Precision.BF16))
    from core.runtime import runtime_availability

    rows = {r["runtime"]: r for r in runtime_availability()}
    assert "no AVX512_BF16" in rows["ov"]["unavailable_precisions"]["bf16"] and rows["ov"]["available"]
    assert rows["ort"]["unavailable_precisions"] == {}


@pytest.mark.parametrize(("variant", "ran"), [("ov:fp32", "f32"), ("ov:bf16", "bf16"), ("ov:int8", "int8")])
def test_openvino_says_what_precision_its_convolutions_really_ran_in(detectors, variant, ran):
    backend = runnable(detectors, variant).backend
    assert backend.coverage is not None and backend.coverage >= 0.9
    text = backend.precision_text()
    total = sum(backend.conv_precisions.values())
    assert f"convolutions {ran}" in text and total >= 50 and "only" not in text
    assert text in backend.description and "OpenVINO 20" in backend.description


def test_a_variant_whose_precision_covers_few_convolutions_is_flagged(detectors):
    backend = detectors["ov:fp32"].backend
    saved = backend.conv_precisions
    try:
        backend.conv_precisions = {"f32": 30, "bf16": 30}
        assert "(only 50% of convolutions ran in f32)" in backend.description
    finally:
        backend.conv_precisions = saved


def test_one_compiled_model_serves_several_threads_at_once(detectors, bus_image):
    det = detectors["ov:fp32"]
    assert type(det.backend).thread_safe
    want = det.detect(bus_image).detections
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(det.detect(bus_image).detections)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4
    for d in got:
        np.testing.assert_allclose(d.xyxy, want.xyxy, atol=1e-3)


def test_a_file_openvino_cannot_compile_is_one_line_naming_openvino(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from core.runtime import create_backend

    node = helper.make_node("NoSuchOp", ["images"], ["out"], domain="com.example")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 64, 64])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    path = tmp_path / "odd.onnx"
    onnx.save(model, str(path))
    with pytest.raises(RuntimeUnavailableError) as err, create_backend(Runtime.OV) as backend:
        backend.load(path, Precision.FP32)
    message = str(err.value)
    assert message.startswith("OpenVINO could not compile odd.onnx: ") and "\n" not in message


def test_a_file_whose_weights_point_outside_it_is_refused_before_reading_them(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from core.runtime import create_backend

    weight = numpy_helper.from_array(np.ones((1, 3, 1, 1), np.float32), "w")
    node = helper.make_node("Mul", ["images", "w"], ["out"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])], [weight],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)  # fmt: skip
    with pytest.raises(RuntimeUnavailableError, match="external files"), create_backend(Runtime.OV) as backend:
        backend.load(tmp_path / "ext.onnx", Precision.FP32)
