"""The CUDA side, through cuda-python's runtime API (which returns (error, value...) tuples): error
checks, and views over pinned host memory. cuda-python is never imported here: callers pass ``cudart``."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import RuntimeUnavailableError


def cuda_check(cudart: Any, result: Any, what: str) -> Any:
    """The value of a cuda-python call, or a :class:`RuntimeUnavailableError` naming the CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        _, err_name = cudart.cudaGetErrorName(err)
        _, err_text = cudart.cudaGetErrorString(err)
        raise RuntimeUnavailableError(f"CUDA could not {what}: {err_name.decode()} ({err_text.decode()})")
    return values[0] if len(values) == 1 else tuple(values)


@dataclass
class Buffer:
    """One engine I/O tensor: its device memory and the pinned host memory it is copied through."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    device: int  # device pointer
    host_ptr: int  # pinned host memory: needed for truly asynchronous copies
    host: np.ndarray  # a view over host_ptr


def pinned_view(ptr: int, nbytes: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A numpy array of ``shape`` over the ``nbytes`` of host memory at ``ptr`` (no copy)."""
    raw = (ctypes.c_uint8 * max(nbytes, 1)).from_address(ptr)
    return np.ctypeslib.as_array(raw)[:nbytes].view(dtype).reshape(shape)
