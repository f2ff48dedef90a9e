"""Find an NVIDIA GPU through the CUDA driver API (ctypes, no Python CUDA package needed)."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from dataclasses import dataclass

from core.runtime.backends.base import Availability


@dataclass(frozen=True)
class GpuInfo:
    ok: bool
    reason: str = ""
    name: str = ""
    compute_capability: str = ""  # e.g. "8.9"
    count: int = 0


_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


@functools.cache
def probe_gpu(device_id: int = 0) -> GpuInfo:
    """The first question every GPU runtime asks; cached for the process."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return GpuInfo(False, "no NVIDIA driver on this machine (libcuda.so.1 not found)")
    rc = cuda.cuInit(0)
    if rc != 0:
        return GpuInfo(False, f"the NVIDIA driver failed to initialise (CUDA error {rc}); no usable GPU")
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return GpuInfo(False, "no NVIDIA GPU found (the driver reports 0 CUDA devices)")
    if device_id >= count.value:
        return GpuInfo(False, f"GPU {device_id} requested but only {count.value} present", count=count.value)
    dev = ctypes.c_int(0)
    cuda.cuDeviceGet(ctypes.byref(dev), device_id)
    name = ctypes.create_string_buffer(256)
    cuda.cuDeviceGetName(name, 256, dev)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    cuda.cuDeviceGetAttribute(ctypes.byref(major), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
    return GpuInfo(True, "", name.value.decode(errors="replace"), f"{major.value}.{minor.value}", count.value)


def gpu_then(check: Callable[[], Availability]) -> Availability:
    """A GPU runtime's availability: the GPU's reason first (no driver, no device), then ``check``'s."""
    gpu = probe_gpu()
    return check() if gpu.ok else Availability(False, gpu.reason)
