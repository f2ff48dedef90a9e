import pytest

from core.errors import InputError
from core.variants import CPU_VARIANTS, REFERENCE, VARIANTS, Artefact, Precision, Runtime, Variant, parse_variants


def test_parse_round_trips_every_variant_in_the_table():
    for variant in VARIANTS:
        assert Variant.parse(str(variant)) == variant
        assert Variant.parse(f"  {str(variant).upper()} ") == variant


@pytest.mark.parametrize("text", ["ort", "ort:fp8", "onnx:fp32", "ort-cuda:int8", "", "trt fp16"])
def test_unknown_variants_are_refused_with_the_list_of_known_ones(text):
    with pytest.raises(InputError) as err:
        Variant.parse(text)
    assert "ort:fp32" in str(err.value) and "trt:int8" in str(err.value)


def test_parse_variants_keeps_order_and_drops_duplicates():
    assert parse_variants("ort:int8, ort:fp32,ort:int8") == [
        Variant(Runtime.ORT, Precision.INT8),
        Variant(Runtime.ORT, Precision.FP32),
    ]
    with pytest.raises(InputError):
        parse_variants(" , ")


def test_table_shape():
    assert REFERENCE in VARIANTS and not VARIANTS[REFERENCE].needs_gpu
    assert [str(v) for v in CPU_VARIANTS] == [
        "ort:fp32", "ort:fp16", "ort:int8", "ov:fp32", "ov:bf16", "ov:int8", "torch:fp32", "torch:bf16"
    ]  # fmt: skip
    assert VARIANTS[Variant.parse("ov:int8")].artefact is Artefact.ONNX_INT8_CPU  # the same file as ort:int8
    # INT8 on ONNX Runtime CPU uses the CPU flavour; everything TensorRT uses the symmetric one
    assert VARIANTS[Variant.parse("ort:int8")].artefact is Artefact.ONNX_INT8_CPU
    assert VARIANTS[Variant.parse("trt:int8")].artefact is Artefact.ONNX_INT8_TRT
    assert VARIANTS[Variant.parse("ort-trt:int8")].artefact is Artefact.ONNX_INT8_TRT
    for v, spec in VARIANTS.items():
        assert spec.needs_gpu == (v.runtime not in (Runtime.ORT, Runtime.OV, Runtime.TORCH))
        if spec.artefact is Artefact.CHECKPOINT:  # the .pt holds FP32 weights; torch-cuda:fp16 halves them
            assert v.runtime in (Runtime.TORCH, Runtime.TORCH_CUDA)
            assert "baseline" in spec.note or (v.precision is Precision.BF16 and "autocast" in spec.note)
        elif v.precision is Precision.BF16:  # no BF16 file: the runtime computes in BF16 from the FP32 one
            assert spec.artefact is Artefact.ONNX_FP32 and "native BF16" in spec.note
        else:  # an ONNX file carries the precision it runs
            assert spec.artefact.value.split("-")[1] == v.precision.value


def test_each_row_names_a_backend_that_runs_its_runtime():
    from core.runtime.backends.base import Backend, backend_class

    for v, spec in VARIANTS.items():
        cls = backend_class(v.runtime)  # imports the module the table names; no GPU library is needed for that
        assert issubclass(cls, Backend) and cls.runtime is v.runtime, spec.backend
        assert spec.backend.endswith(f":{cls.__name__}")
        assert spec.artefact.precision in (v.precision, Precision.FP32) or spec.artefact is Artefact.CHECKPOINT
    # one backend per runtime: a runtime's rows never disagree
    for rt in Runtime:
        assert len({s.backend for v, s in VARIANTS.items() if v.runtime is rt}) <= 1


def test_artefact_of_a_precision_and_the_reference_appended_once():
    from core.variants import Int8Flavour, with_reference

    assert Artefact.of(Precision.FP16) is Artefact.ONNX_FP16
    assert Artefact.of(Precision.INT8) is Artefact.ONNX_INT8_CPU
    assert Artefact.of(Precision.INT8, Int8Flavour.TRT) is Artefact.ONNX_INT8_TRT
    int8 = Variant.parse("ort:int8")
    assert with_reference([int8]) == [int8, REFERENCE]
    assert with_reference([REFERENCE, int8]) == [REFERENCE, int8]


@pytest.mark.parametrize("text", ["ov:fp16", "trt:bf16", "ort:bf16"])
def test_a_cell_left_empty_on_purpose_says_why(text):
    from core.variants import ABSENT

    runtime, precision = text.split(":")
    cell = Variant(Runtime(runtime), Precision(precision))
    with pytest.raises(InputError) as err:
        Variant.parse(text)
    assert str(err.value).startswith(f"{text} is not offered: ") and ABSENT[cell] in str(err.value)
    assert cell not in VARIANTS
