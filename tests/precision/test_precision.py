"""core.precision.drift: where the INT8 file's activations part from FP32's, on real calibration images."""

from __future__ import annotations

import math

import numpy as np

from core.data.images import load_image
from core.model.convert import list_images
from core.precision import block_of, layer_drift
from core.runtime.processing import preprocess
from core.variants import Artefact


def test_drift_ranks_yolov5_blocks_by_their_worst_tensor(store, calib_dir):
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

    inputs = [preprocess(load_image(f), store.input_hw)[0] for f in list_images(calib_dir)[:2]]
    report = layer_drift(store.fp32(), store.artefact(Artefact.ONNX_INT8_CPU), inputs)
    assert report.images == 2 and len(report.tensors) > 100
    assert all(math.isfinite(t.sqnr_db) for t in report.tensors)
    assert [t.sqnr_db for t in report.tensors] == sorted(t.sqnr_db for t in report.tensors)
    modules = {b.block: b.module for b in report.blocks}
    assert modules["model.2"] == "C3" and modules["model.9"] == "SPPF" and modules["model.11"] == "Upsample"
    assert modules["model.1"] == "Conv" and modules["model.12"] == "Concat"
    assert "model.24" not in modules  # the Detect convs stay float in the default recipe: nothing to drift
    by_block = {b.block: b.worst_db for b in report.blocks}
    assert by_block["model.1"] > by_block["model.23"]  # drift accumulates with depth
    assert report.table().rows[0][0] == report.blocks[0].block

    # the same figure ONNX Runtime's own helper gives on both images at once, for one tensor
    name = "/model.2/cv1/conv/Conv_output_0"
    ours = next(t.sqnr_db for t in report.tensors if t.tensor == name)
    import onnxruntime as ort

    def output(path, tensor, x):
        import onnx

        model = onnx.load(str(path))
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run([tensor], {"images": x})[0]

    ref = [output(store.fp32(), name, x) for x in inputs]  # FP32, against the value after Q/DQ in the INT8 file
    qdq = [output(store.artefact(Artefact.ONNX_INT8_CPU), f"{name}_DequantizeLinear_Output", x) for x in inputs]
    assert np.isclose(ours, compute_signal_to_quantization_noice_ratio(ref, qdq), atol=0.01)


def test_block_names_as_the_checkpoint_names_them():
    assert block_of("/model.23/m/m.0/cv1/act/Mul_output_0") == "model.23"
    assert block_of("images") == ""
