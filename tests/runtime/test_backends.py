"""core.runtime.backends: the contract every runtime implements, and ONNX Runtime's CPU backend against it."""

import numpy as np
import pytest

from core.errors import CoreError
from core.runtime.backends import BackendOptions, OrtOptions, create_backend
from core.runtime.backends.base import Availability, Backend
from core.variants import Runtime


def test_the_backend_contract_has_safe_defaults():
    """A new runtime that declares nothing more runs whole graphs, one image per call, under a lock."""

    class Minimal(Backend):
        runtime = Runtime.ORT

        @classmethod
        def available(cls) -> Availability:
            return Availability(True)

        def _load(self, model_path, precision, progress) -> None: ...

        def _infer(self, batch):
            return batch

    b = Minimal()
    assert b.head is None and b.max_batch == 1 and b.thread_safe is False
    with pytest.raises(CoreError, match="no head outputs"):
        b.infer_heads(None)


def test_the_cpu_backend_declares_what_the_detector_uses(detectors, bus_image):
    """ort:fp32 cuts the graph before the decode: any batch size, thread-safe, head outputs per level."""
    backend = detectors["ort:fp32"].backend
    assert backend.thread_safe and backend.head is not None and backend.max_batch is None
    batch = np.zeros((2, 3, 640, 640), np.float32)
    outs = backend.infer_heads(batch)
    assert len(outs) == len(backend.head.outputs) and all(o.shape[0] == 2 for o in outs)


def test_runtime_options_have_their_own_homes():
    opts = BackendOptions.for_turns(in_turn=True, threads=1)
    assert opts.threads == 1 and opts.ort == OrtOptions(spin=False) and opts.tensorrt.workspace_mb == 1024
    assert BackendOptions.for_turns(in_turn=False).ort.spin
    backend = create_backend(Runtime.ORT, opts)
    assert backend.options.ort.spin is False and backend.head is None  # nothing loaded yet
    with pytest.raises(CoreError, match="before load"):
        backend.infer(np.zeros((1, 3, 32, 32), np.float32))


def test_gpu_sessions_list_their_providers_in_onnx_runtimes_order(tmp_path):
    """ort-trt: TensorRT, then CUDA for what TensorRT rejects, then the CPU; ort-cuda: CUDA, then the CPU."""
    from core.runtime.backends.onnxruntime import OrtCpuBackend, OrtCudaBackend, OrtTensorrtBackend
    from core.variants import Precision

    options = BackendOptions(device_id=1, cache_dir=tmp_path)

    def names(listed):
        return [p[0] if isinstance(p, tuple) else p for p in listed]

    trt = OrtTensorrtBackend(options).providers(Precision.FP16)
    assert names(trt) == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert trt[0][1]["trt_fp16_enable"] and not trt[0][1]["trt_int8_enable"] and trt[0][1]["device_id"] == 1
    assert trt[1][1] == {"device_id": 1}
    cuda = OrtCudaBackend(options).providers(Precision.FP32)
    assert names(cuda) == ["CUDAExecutionProvider", "CPUExecutionProvider"] and cuda[0][1]["device_id"] == 1
    assert names(OrtCpuBackend(options).providers(Precision.FP32)) == ["CPUExecutionProvider"]


def test_a_loaded_session_cannot_fall_back_and_says_where_its_nodes_ran(detectors):
    """ONNX Runtime's Python session would quietly re-create itself on the CPU after a provider failure;
    ours has that switched off. The first inference is profiled: every node is accounted for."""
    backend = detectors["ort:fp32"].backend
    assert backend._session._enable_fallback is False  # the flag InferenceSession.run consults
    assert set(backend.placement) == {"CPUExecutionProvider"} and backend.placement["CPUExecutionProvider"] > 100
    assert backend.off_device_nodes == 0


def test_a_gpu_providers_failure_while_running_is_an_error_with_onnx_runtimes_text(detectors, bus_image):
    """The error path of a GPU variant, fed a real ONNX Runtime failure (a CPU session given a wrong input):
    one error naming the provider, what is active, and ONNX Runtime's own words; never a quiet retry."""
    from core.errors import RuntimeUnavailableError
    from core.runtime.backends.onnxruntime import OrtCudaBackend

    session = detectors["ort:fp32"].backend._session
    with pytest.raises(RuntimeUnavailableError) as info:
        OrtCudaBackend()._run(session, None, {"not-the-input": np.zeros((1, 3, 640, 640), np.float32)})
    text = str(info.value)
    assert "CUDAExecutionProvider failed while running" in text and "active providers: CPUExecutionProvider" in text
    assert "not-the-input" in text  # ONNX Runtime's message


def test_placement_in_words():
    from core.runtime.backends.onnxruntime import placement_text

    assert placement_text({"CPUExecutionProvider": 145}) == "all 145 nodes on CPU"
    both = {"CPUExecutionProvider": 2, "TensorrtExecutionProvider": 1, "CUDAExecutionProvider": 5}
    assert placement_text(both) == "5 nodes on CUDA, 2 on CPU, 1 on TensorRT"
    assert placement_text({}) == ""


def test_asking_what_can_run_imports_no_torch():
    """Every page asks each runtime whether it can run; torch takes seconds to import and only the
    PyTorch baseline (or converting a .pt) needs it."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom core.runtime.backends import availability\nfrom core.variants import Runtime\n"
        "[availability(r) for r in Runtime]\nprint('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_onnx_runtime_says_what_its_convolutions_ran_in_and_flags_fp16_run_as_fp32(detectors):
    assert detectors["ort:fp32"].backend.description.endswith("(60/60 convolutions fp32)")
    # the recipe keeps the stem and the Detect convs in float
    assert detectors["ort:int8"].backend.description.endswith("(56/60 convolutions int8)")
    # the CPU provider runs the FP16 file in FP32 (casts at its edges): the card's "runs on" says so
    assert detectors["ort:fp16"].backend.description.endswith("(0/60 convolutions fp16; only 0% in fp16)")
