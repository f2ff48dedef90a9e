"""The one ONNX reader: refusals, precision and INT8 flavour from the file, class names, external data.

The precision of the real converted artefacts is checked in tests/gpu/test_tensorrt.py (with the TensorRT
backend's precision check); here small graphs made with onnx.helper cover each rule on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from core.errors import ModelError
from core.runtime.onnx_file import COCO_NAMES, inspect_onnx, parse_names, read_names_file, read_onnx
from core.runtime.processing import OutputLayout
from core.variants import Int8Flavour, Precision

from ..helpers import dynamic_relu_onnx, random_bytes, tiny_classifier_onnx


def test_random_bytes_named_onnx_are_refused(tmp_path):
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        inspect_onnx(random_bytes(tmp_path / "noise.onnx"))


def test_an_onnx_classifier_is_not_taken_for_a_detector(tmp_path):
    with pytest.raises(ModelError, match=r"expected a detector output"):
        inspect_onnx(tiny_classifier_onnx(tmp_path / "classifier.onnx"))


# ---------------------------------------------------------------------------------------------
# small graphs, one rule each


def _save(
    path: Path,
    nodes: list,
    initializers: Sequence = (),
    out_dims: Sequence[int] = (1, 3, 8, 8),
    meta: dict[str, str] | None = None,
) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, list(out_dims))
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (meta or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def _qdq(path: Path, zero_point_type: int) -> Path:
    from onnx import helper

    scale = helper.make_tensor("scale", 1, [], [0.1])  # FLOAT
    zero = helper.make_tensor("zero", zero_point_type, [], [0])
    nodes = [
        helper.make_node("QuantizeLinear", ["images", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["out"]),
    ]
    return _save(path, nodes, [scale, zero])


def test_precision_and_int8_flavour_come_from_the_file(tmp_path):
    from onnx import TensorProto, helper

    plain = read_onnx(_save(tmp_path / "fp32.onnx", [helper.make_node("Relu", ["images"], ["out"])]))
    assert plain.precision is Precision.FP32 and plain.int8_flavour is None

    cast = [
        helper.make_node("Cast", ["images"], ["h"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["h"], ["out"], to=TensorProto.FLOAT),
    ]
    fp16 = read_onnx(_save(tmp_path / "fp16.onnx", cast))
    assert fp16.precision is Precision.FP16 and fp16.int8_flavour is None

    weight = helper.make_tensor("w", TensorProto.FLOAT16, [1], [1.0])
    fp16_init = read_onnx(_save(tmp_path / "fp16w.onnx", [helper.make_node("Relu", ["images"], ["out"])], [weight]))
    assert fp16_init.precision is Precision.FP16

    cpu = read_onnx(_qdq(tmp_path / "int8-cpu.onnx", TensorProto.UINT8))
    assert cpu.precision is Precision.INT8 and cpu.int8_flavour is Int8Flavour.CPU
    trt = read_onnx(_qdq(tmp_path / "int8-trt.onnx", TensorProto.INT8))
    assert trt.precision is Precision.INT8 and trt.int8_flavour is Int8Flavour.TRT


def test_io_is_read_with_dynamic_dimensions_marked(tmp_path):
    path = dynamic_relu_onnx(tmp_path / "dyn.onnx")
    f = read_onnx(path)
    assert f.name == "dyn.onnx" and f.input_name == "images" and f.output_names == ("out",)
    assert f.input.dims == (None, 3, None, None) and f.input_shape == (-1, 3, -1, -1) and f.dynamic
    from onnx import TensorProto

    assert f.input.elem_type == TensorProto.FLOAT


def test_external_data_is_never_read(tmp_path):
    """An initializer pointing at a file beyond the model: read_onnx reads the graph, never that file."""
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in {"location": "elsewhere/weights.bin", "offset": "0", "length": "16"}.items():
        weight.external_data.add(key=key, value=value)
    path = _save(tmp_path / "ext.onnx", [helper.make_node("Relu", ["images"], ["out"])], [weight])
    with pytest.raises(onnx.checker.ValidationError, match=r"weights\.bin"):  # the default load follows it
        onnx.load(str(path))
    assert read_onnx(path).input_name == "images"


def test_a_model_without_one_image_input_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["out"])], "g", [a, b], [y])
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelError, match="expected one image input, found 2 inputs"):
        read_onnx(path)


# ---------------------------------------------------------------------------------------------
# the detector view: layout and class names


def _detector(path: Path, out_dims: Sequence[int], meta: dict[str, str] | None = None) -> Path:
    from onnx import helper

    return _save(path, [helper.make_node("Identity", ["images"], ["out"])], out_dims=out_dims, meta=meta)


def test_layout_and_names(tmp_path):
    coco = inspect_onnx(_detector(tmp_path / "v5.onnx", [1, 252, 85]))
    assert coco.layout is OutputLayout.YOLOV5 and coco.names == COCO_NAMES and coco.input_hw == (8, 8)
    free = inspect_onnx(_detector(tmp_path / "v8.onnx", [1, 7, 84], meta={"names": "{0: 'cat', 1: 'dog', 2: 'owl'}"}))
    assert free.layout is OutputLayout.ANCHOR_FREE and free.names == ("cat", "dog", "owl") and free.num_classes == 3
    unnamed = inspect_onnx(_detector(tmp_path / "two.onnx", [1, 252, 7]))
    assert unnamed.names == ("class0", "class1")

    names = tmp_path / "names.txt"
    names.write_text("# pets\ncat\ndog\n")
    assert inspect_onnx(tmp_path / "two.onnx", names).names == ("cat", "dog")
    names.write_text("a\nb\nc\n")
    with pytest.raises(ModelError, match="predicts 2 classes but 3 class names were given"):
        inspect_onnx(tmp_path / "two.onnx", names)


def test_names_parsers():
    assert parse_names('["a", "b"]') == ["a", "b"]
    assert parse_names('{"1": "b", "0": "a"}') == ["a", "b"]
    assert parse_names("{0: 'a', 1: 'b'}") == ["a", "b"]
    assert parse_names("not names") is None


def test_names_file_without_names_is_refused(tmp_path):
    from core.errors import InputError

    path = tmp_path / "empty.txt"
    path.write_text("# nothing here\n\n")
    with pytest.raises(InputError, match="holds no class names"):
        read_names_file(path)


def test_the_fp16_file_computes_no_shape_in_fp16_and_a_plain_conversion_would(store):
    """TensorRT's strong typing refuses FP16 arithmetic feeding a shape input (the Resize sizes of the two
    upsamples): the FP16 artefact is folded first; converting the FP32 file without folding shows the fault."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from core.runtime.onnx_file import fp16_shape_inputs
    from core.variants import Artefact

    fp16 = onnx.load(str(store.artefact(Artefact.ONNX_FP16)))
    assert fp16_shape_inputs(fp16) == []
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in fp16.graph.initializer)  # it is FP16 all right
    plain = convert_float_to_float16(onnx.load(str(store.artefact(Artefact.ONNX_FP32))), keep_io_types=True)
    assert fp16_shape_inputs(plain) == ["/model.11/Resize input 3", "/model.15/Resize input 3"]
