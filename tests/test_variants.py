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
    assert [str(v) for v in CPU_VARIANTS] == ["ort:fp32", "ort:fp16", "ort:int8"]
    # INT8 on ONNX Runtime CPU uses the CPU flavour; everything TensorRT uses the symmetric one
    assert VARIANTS[Variant.parse("ort:int8")].artefact is Artefact.ONNX_INT8_CPU
    assert VARIANTS[Variant.parse("trt:int8")].artefact is Artefact.ONNX_INT8_TRT
    assert VARIANTS[Variant.parse("ort-trt:int8")].artefact is Artefact.ONNX_INT8_TRT
    for v, spec in VARIANTS.items():
        assert spec.needs_gpu == (v.runtime is not Runtime.ORT)
        assert spec.artefact.value.split("-")[1] == v.precision.value
