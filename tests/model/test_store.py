"""Conversions on the real model: what each artefact holds, caching, and the INT8 flavours' structure."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from core.errors import InputError, Setting
from core.model.convert import Int8Options
from core.model.sources import resolve_model
from core.model.store import ModelStore
from core.variants import Artefact, Int8Flavour


def _initializers(model):
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_fp32_export_matches_pytorch_numerically(store, yolov5n_pt):
    import onnxruntime as ort
    import torch

    from core.runtime.legacy_yolov5 import load_legacy

    x = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)
    with torch.no_grad():
        expected = load_legacy(yolov5n_pt).model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(store.fp32()), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": x})[0]
    assert got.shape == (1, 25200, 85)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-2)  # xywh in pixels, scores in 0..1


def test_fp16_artefact_is_fp16_inside_with_fp32_edges(store):
    model = onnx.load(str(store.artefact(Artefact.ONNX_FP16)))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    conv_weights = [i for i in model.graph.initializer if i.dims and len(i.dims) == 4]
    assert conv_weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in conv_weights)


def test_artefacts_are_cached_and_named_by_their_inputs(store):
    a = store.artefact(Artefact.ONNX_INT8_CPU)
    mtime = a.stat().st_mtime_ns
    assert store.artefact(Artefact.ONNX_INT8_CPU) == a and a.stat().st_mtime_ns == mtime
    statuses = {s.artefact: s for s in store.status()}
    assert statuses[Artefact.ONNX_INT8_CPU].exists and statuses[Artefact.ONNX_INT8_CPU].size_bytes > 0
    other = ModelStore(store.source, store.cache_root, calib_dir=store.calib_dir, int8=Int8Options(max_images=8))
    assert other.path_for(Artefact.ONNX_INT8_CPU) != a  # different calibration -> different artefact


def test_int8_without_calibration_images_says_what_to_pass(store):
    bare = ModelStore(store.source, store.cache_root)
    # the engine's words and the setting; the CLI says "--calib", a page its calibration folder (tests/cli)
    with pytest.raises(InputError, match="INT8 needs calibration images") as exc:
        bare.artefact(Artefact.ONNX_INT8_CPU)
    assert exc.value.setting is Setting.CALIBRATION


def _qdq(model):
    inits = _initializers(model)
    q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    return inits, q, dq


def test_int8_cpu_flavour_u8_activations_s8_per_channel_weights_float_decode(store):
    model = onnx.load(str(store.artefact(Artefact.ONNX_INT8_CPU)))
    inits, q, dq = _qdq(model)
    act_zp = [inits[n.input[2]] for n in q]
    assert act_zp and all(z.dtype == np.uint8 for z in act_zp)
    weight_dq = [n for n in dq if n.input[0] in inits and inits[n.input[0]].ndim == 4]
    assert weight_dq and all(inits[n.input[0]].dtype == np.int8 for n in weight_dq)
    assert all(inits[n.input[1]].size > 1 for n in weight_dq)  # per-channel scales
    # the Detect head's decode (sigmoid, grid, anchors) stays float: nothing after the last convs is quantized
    assert not any("/model.24/" in n.name and "Conv" not in n.name for n in q)


def test_int8_trt_flavour_is_what_tensorrt_explicit_quantization_accepts(store):
    trt_store = ModelStore(store.source, store.cache_root, calib_dir=store.calib_dir, int8=Int8Options(max_images=16))
    model = onnx.load(str(trt_store.artefact(Artefact.ONNX_INT8_TRT)))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    inits, q, dq = _qdq(model)
    zps = [inits[n.input[2]] for n in (*q, *dq) if len(n.input) > 2]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)  # symmetric: zero-points 0
    assert {n.domain for n in (*q, *dq)} <= {""}  # standard ops, no com.microsoft
    bias_dq = [n for n in dq if n.input[0] in inits and inits[n.input[0]].dtype == np.int32]
    assert not bias_dq  # bias stays float
    weight_dq = [n for n in dq if n.input[0] in inits and inits[n.input[0]].ndim == 4]
    assert weight_dq and all(inits[n.input[1]].size > 1 for n in weight_dq)
    assert onnx.load(str(trt_store.path_for(Artefact.ONNX_INT8_TRT))).metadata_props


def test_store_rejects_sizes_that_are_not_stride_multiples(store):
    with pytest.raises(InputError, match="multiple of 32"):
        ModelStore(store.source, store.cache_root, imgsz=500)


def test_custom_class_model_exports_and_runs_with_its_names(yolov5n_pt, tmp_path):
    from core.variants import REFERENCE

    from ..helpers import custom_class_checkpoint

    pt = custom_class_checkpoint(yolov5n_pt, tmp_path / "pets.pt", ["cat", "dog", "bird"])
    st = ModelStore(resolve_model(pt), cache_root=tmp_path / "cache", imgsz=320)
    assert st.info().names == ("cat", "dog", "bird")
    with st.open_detector(REFERENCE) as det:
        raw = det.infer_raw(np.zeros((100, 200, 3), np.uint8))
        assert raw.output.shape == (1, 6300, 8)


def test_int8_flavours_have_distinct_enum_values():
    assert {f.value for f in Int8Flavour} == {"cpu", "trt"}


def test_fp32_artefact_keeps_its_decode_and_describes_its_head(store):
    from core.runtime.head import head_from_model

    model = onnx.load(str(store.fp32()))
    assert [o.name for o in model.graph.output] == ["output0"]  # the file's contract for users and TensorRT
    head = head_from_model(model)
    assert head is not None and head.strides == (8.0, 16.0, 32.0) and head.num_outputs == 85
    np.testing.assert_allclose(head.anchors[0], [[10, 13], [16, 30], [33, 23]])  # YOLOv5's P3 anchors, pixels
    int8 = head_from_model(onnx.load(str(store.artefact(Artefact.ONNX_INT8_CPU))))
    assert int8 is not None and int8.outputs == head.outputs


def test_running_a_cached_fp32_model_never_imports_torch(store, bus_jpg):
    import subprocess
    import sys
    from pathlib import Path

    store.fp32()  # cached before the fresh process starts, as after a first run
    code = f"""
import sys
from pathlib import Path
from core.data.images import load_image
from core.model.sources import resolve_model
from core.model.store import ModelStore
from core.variants import REFERENCE
s = ModelStore(resolve_model({str(store.source.path)!r}), cache_root=Path({str(store.cache_root)!r}))
d = s.open_detector(REFERENCE)
assert len(d.detect(load_image(Path({str(bus_jpg)!r}))).detections) == 4
print(sorted(m for m in ("torch", "ultralytics") if m in sys.modules))
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_int8_weight_range_follows_the_cpu_and_names_the_file(store, monkeypatch):
    from core.runtime.cpu import CpuFeatures, cpu_features

    here = Int8Options()
    assert here.reduce_range is not cpu_features().vnni  # 8-bit weights only where VNNI sums them without overflow
    for flags, seven in ((frozenset({"avx2"}), True), (frozenset({"avx2", "avx512_vnni"}), False),
                         (frozenset({"avx2", "avx_vnni"}), False)):  # fmt: skip
        monkeypatch.setattr("core.runtime.cpu.cpu_features", lambda flags=flags: CpuFeatures(flags))
        monkeypatch.setattr("core.runtime.cpu_features", lambda flags=flags: CpuFeatures(flags))
        assert Int8Options().reduce_range is seven
    seven_bit = ModelStore(store.source, store.cache_root, calib_dir=store.calib_dir,
                           int8=Int8Options(reduce_range=True))  # fmt: skip
    eight_bit = ModelStore(store.source, store.cache_root, calib_dir=store.calib_dir,
                           int8=Int8Options(reduce_range=False))  # fmt: skip
    assert seven_bit.path_for(Artefact.ONNX_INT8_CPU) != eight_bit.path_for(Artefact.ONNX_INT8_CPU)


def test_weight_bits_on_the_command_line_overrides_the_cpu_s_choice(yolov5n_pt, session_cache):
    from core.cli.options import store as open_from_args
    from core.cli.registry import build_parser

    parser = build_parser()
    base = ["detect", "x.jpg", "--model", str(yolov5n_pt), "--cache-dir", str(session_cache)]
    for bits, seven in (("7", True), ("8", False)):
        assert open_from_args(parser.parse_args([*base, "--weight-bits", bits])).int8.reduce_range is seven
    assert open_from_args(parser.parse_args(base)).int8.reduce_range is Int8Options().reduce_range
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--weight-bits", "6"])
