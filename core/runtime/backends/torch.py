"""The PyTorch baseline: the checkpoint itself, eager, in ``inference_mode``, on the CPU or a CUDA GPU.

"How much faster than our PyTorch model?" is the question asked first; these variants answer it with
the same letterbox, decode and NMS as every other variant. The model is the safe loader's
(:func:`core.runtime.legacy_yolov5.load_legacy`: no code from the pickle runs), so only legacy YOLOv5
checkpoints run here; an ONNX file or an ultralytics-package checkpoint has no baseline.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from core.errors import RuntimeUnavailableError
from core.progress import Progress
from core.runtime.backends.base import Availability, Backend, BackendOptions, NodeProfiler, NodeTime, median_after_first
from core.runtime.backends.gpu import gpu_then
from core.runtime.backends.onnxruntime import physical_cores
from core.runtime.cpu import cpu_features
from core.variants import Precision, Runtime

if TYPE_CHECKING:
    import torch


def _torch_present() -> Availability:
    """Without importing torch (seconds, and the app's pages ask this on every start)."""
    if importlib.util.find_spec("torch") is None:
        return Availability(False, "torch is not installed (pip install -r requirements.txt)")
    return Availability(True)


def _fused(model: torch.nn.Module) -> torch.nn.Module:
    """Conv and BatchNorm folded into one conv, as YOLOv5's own ``detect.py`` runs a checkpoint."""
    from ultralytics.nn.modules import Conv
    from ultralytics.utils.torch_utils import fuse_conv_and_bn

    for m in model.modules():
        if isinstance(m, Conv) and hasattr(m, "bn"):
            m.conv = fuse_conv_and_bn(m.conv, m.bn)
            delattr(m, "bn")
            m.forward = m.forward_fuse  # type: ignore[method-assign]
    return model


class _TorchProfiler(NodeProfiler):
    def __init__(self, backend: _TorchBackend) -> None:
        assert backend._model is not None
        self.backend = backend
        self.blocks = list(backend._model.model)  # type: ignore[arg-type]
        self.times: list[list[float]] = [[] for _ in self.blocks]

    def run(self, batch: np.ndarray) -> None:
        import time

        import torch

        cuda = self.backend.device_type == "cuda"
        started: dict[int, float] = {}

        def before(i: int) -> Any:
            def hook(module: object, args: object) -> None:
                if cuda:
                    torch.cuda.synchronize()
                started[i] = time.perf_counter()

            return hook

        def after(i: int) -> Any:
            def hook(module: object, args: object, out: object) -> None:
                if cuda:
                    torch.cuda.synchronize()
                self.times[i].append((time.perf_counter() - started[i]) * 1000)

            return hook

        handles = [h for i, b in enumerate(self.blocks)
                   for h in (b.register_forward_pre_hook(before(i)), b.register_forward_hook(after(i)))]  # fmt: skip
        try:
            self.backend.infer(batch)
        finally:
            for h in handles:
                h.remove()

    def nodes(self) -> list[NodeTime]:
        import torch

        b = self.backend
        precision = "bf16" if b._autocast is not None or b._dtype == torch.bfloat16 else (
            "fp16" if b._dtype == torch.float16 else "fp32")  # fmt: skip
        return [
            NodeTime(f"model.{i}", type(block).__name__, "compute", precision, median_after_first(ts))
            for i, (block, ts) in enumerate(zip(self.blocks, self.times, strict=True))
            if ts
        ]


class _TorchBackend(Backend):
    device_type: ClassVar[str]

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self._model: torch.nn.Module | None = None
        self._device: torch.device | None = None
        self._dtype: torch.dtype | None = None
        self._autocast: torch.dtype | None = None  # CPU BF16: the FP32 module run under autocast to this dtype

    @property
    def max_batch(self) -> int | None:
        return None  # the module takes any batch

    def any_shape(self) -> Availability:
        return Availability(True)  # eager: the Detect head builds its grid for each input size, as detect.py

    def _load(self, model_path: Path, precision: Precision, progress: Progress) -> None:
        import torch

        from core.runtime.legacy_yolov5 import load_legacy

        if self.device_type == "cpu":  # process-wide: torch has no per-module setting
            torch.set_num_threads(self.options.threads or physical_cores())
        progress(0.2, f"PyTorch: loading {model_path.name}")
        model = _fused(load_legacy(model_path).model)
        device = torch.device(self.device_type, self.options.device_id if self.device_type == "cuda" else None)
        dtype = {Precision.FP16: torch.float16, Precision.BF16: torch.bfloat16}.get(precision, torch.float32)
        if self.device_type == "cpu" and precision is Precision.BF16:
            # CPU autocast: convolutions and matmuls in bfloat16 (oneDNN's native kernels), the rest in FP32
            self._autocast, dtype = torch.bfloat16, torch.float32
        try:
            model = model.to(device=device, dtype=dtype).eval()
        except Exception as exc:  # CUDA out of memory, a broken driver...
            raise RuntimeUnavailableError(f"{self.runtime.label}: could not move the model to {device}: {exc}") from exc
        self._model, self._device, self._dtype = model, device, dtype

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        assert self._model is not None and self._device is not None
        autocast = (
            torch.autocast("cpu", dtype=self._autocast) if self._autocast is not None else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self._device, self._dtype)
            y = self._model(x)
            out: np.ndarray = y.float().cpu().numpy()  # .cpu() waits for the GPU: the time is all in
        return out

    def profiler(self) -> NodeProfiler:
        """Each YOLOv5 block (``model.N``, the checkpoint's layer list) timed by forward hooks around it, set
        only during the profiled calls; eager PyTorch runs one block after the other, so they add up."""
        return _TorchProfiler(self)

    def _close(self) -> None:
        self._model = None
        if self.device_type == "cuda":
            with contextlib.suppress(Exception):
                import torch

                torch.cuda.empty_cache()

    @property
    def description(self) -> str:
        import torch

        if self.device_type == "cpu":
            bf16 = ", autocast bf16" if self._autocast is not None else ""
            return (
                f"{self.runtime.label} {torch.__version__}, eager, Conv+BN fused{bf16}, "
                f"{torch.get_num_threads()} threads"
            )
        name = tf32 = ""
        with contextlib.suppress(Exception):
            name = f" on {torch.cuda.get_device_name(self._device)}"
            # cuDNN convolutions on Ampere and later run FP32 as TF32 (10-bit mantissa) unless told not to
            ampere = torch.cuda.get_device_capability(self._device) >= (8, 0)
            if self._dtype == torch.float32 and torch.backends.cudnn.allow_tf32 and ampere:
                tf32 = "; FP32 convolutions run as TF32 (torch.backends.cudnn.allow_tf32)"
        base = f"{self.runtime.label} {torch.__version__} (CUDA {torch.version.cuda}), eager, Conv+BN fused"
        return f"{base}{name}{tf32}"


class TorchCpuBackend(_TorchBackend):
    runtime = Runtime.TORCH
    device_type = "cpu"

    @classmethod
    def available(cls) -> Availability:
        return _torch_present()

    @classmethod
    def precision_available(cls, precision: Precision) -> Availability:
        if precision is Precision.BF16 and (why := cpu_features().bf16_reason()):
            return Availability(False, f"{why} (PyTorch would emulate it)")
        return Availability(True)


class TorchCudaBackend(_TorchBackend):
    runtime = Runtime.TORCH_CUDA
    device_type = "cuda"

    @classmethod
    def available(cls) -> Availability:
        return gpu_then(cls._torch_sees_the_gpu)

    @classmethod
    def precision_available(cls, precision: Precision) -> Availability:
        if precision is not Precision.BF16:
            return Availability(True)
        import torch

        if not torch.cuda.is_bf16_supported(including_emulation=False):
            return Availability(False, "this GPU has no native BF16 (compute capability 8.0 or later has it)")
        return Availability(True)

    @staticmethod
    def _torch_sees_the_gpu() -> Availability:
        present = _torch_present()
        if not present:
            return present
        import torch

        if torch.version.cuda is None:
            return Availability(False, f"this torch {torch.__version__} is a CPU-only build; install a CUDA build")
        if not torch.cuda.is_available():
            return Availability(False, f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no usable GPU")
        return Availability(True)
