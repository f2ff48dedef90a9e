"""The native TensorRT backend, checked without a GPU: availability logic, engine cache keys and
invalidation, precision checks on the real artefacts, CUDA error reporting through the real
cuda-python, and API conformance against the real TensorRT 10.16 and 11.4 bindings.

No test here pretends to be TensorRT: the conformance tests read the bindings' own extension
module (its string table) without importing it, because importing needs libnvinfer, which is not
installable here. Running TensorRT is tested in tests/gpu/test_gpu.py, on GPU machines.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core.cache import read_verified
from core.errors import ConversionError, InputError, RuntimeUnavailableError, Setting
from core.runtime.backends import availability, create_backend
from core.runtime.backends import tensorrt as trt_package
from core.runtime.backends.gpu import GpuInfo, probe_gpu
from core.runtime.backends.onnxruntime import OrtCudaBackend, OrtTensorrtBackend, ort_tensorrt_reason
from core.runtime.backends.tensorrt import (
    TRT_API_USED,
    EngineLoad,
    TensorrtBackend,
    check_precision,
    dynamic_profile,
    engine_cache_key,
    engine_path,
    load_or_build,
    timing_cache_path,
)
from core.runtime.backends.tensorrt import availability as trt_availability
from core.runtime.backends.tensorrt import device as trt_device
from core.runtime.onnx_file import read_onnx
from core.variants import VARIANTS, Artefact, Int8Flavour, Precision, Runtime, Variant

from ..helpers import dynamic_relu_onnx

BACKEND_FILES = sorted(Path(trt_package.__file__).parent.glob("*.py"))  # every module of the package
BACKEND_SOURCES = {path.name: path.read_text() for path in BACKEND_FILES}
BINDINGS_SERIES = ("10.16", "11.4")  # the TensorRT lines the backend must work with (issue 4)
FAKE_GPU = GpuInfo(True, "", "NVIDIA L4", "8.9", 1)  # what probe_gpu says on a GPU machine

no_gpu_here = pytest.mark.skipif(probe_gpu().ok, reason="a GPU is present: the no-GPU path is not what runs here")


# ---------------------------------------------------------------------------------------------
# the variant table, as far as GPU runtimes go


def test_gpu_variants_in_the_table_and_their_artefacts():
    gpu = {str(v): s for v, s in VARIANTS.items() if s.needs_gpu}
    assert sorted(gpu) == sorted(
        [
            "ort-cuda:fp32",
            "ort-cuda:fp16",
            "ort-trt:fp32",
            "ort-trt:fp16",
            "ort-trt:int8",
            "trt:fp32",
            "trt:fp16",
            "trt:int8",
            "torch-cuda:fp32",
            "torch-cuda:fp16",
            "torch-cuda:bf16",
        ]
    )
    assert gpu["trt:fp32"].artefact is Artefact.ONNX_FP32
    assert gpu["trt:fp16"].artefact is Artefact.ONNX_FP16
    assert gpu["trt:int8"].artefact is Artefact.ONNX_INT8_TRT  # symmetric Q/DQ: what strongly typed TRT takes
    assert all("strongly typed" in gpu[f"trt:{p}"].note for p in ("fp32", "fp16", "int8"))
    # every runtime resolves to a backend class that can at least say whether it runs, without GPU packages
    for runtime in Runtime:
        assert isinstance(availability(runtime).reason, str)
        assert create_backend(runtime).runtime is runtime


# ---------------------------------------------------------------------------------------------
# availability, in the documented order


@no_gpu_here
def test_without_a_gpu_every_gpu_runtime_says_so():
    reason = probe_gpu().reason
    assert "NVIDIA" in reason or "GPU" in reason
    for runtime in (Runtime.ORT_CUDA, Runtime.ORT_TRT, Runtime.TRT):
        status = availability(runtime)
        assert not status and status.reason == reason


@no_gpu_here
def test_loading_a_trt_variant_without_gpu_raises_the_reason(store):
    with pytest.raises(RuntimeUnavailableError, match=r"trt:fp32 cannot run here: .*NVIDIA"):
        store.open_detector(Variant(Runtime.TRT, Precision.FP32))


def _pretend_gpu_present(monkeypatch):
    """The GPU probe answers as on a GPU machine: the checks after it are what is under test."""
    for module in (
        "core.runtime.backends.tensorrt.availability",
        "core.runtime.backends.tensorrt.backend",
        "core.runtime.backends.gpu",  # gpu_then, which the ONNX Runtime and PyTorch GPU backends ask
    ):
        monkeypatch.setattr(f"{module}.probe_gpu", lambda device_id=0: FAKE_GPU)


no_tensorrt_here = pytest.mark.skipif(
    any(importlib.util.find_spec(m) for m in ("tensorrt", "tensorrt_bindings")),
    reason="a tensorrt package is installed here",
)


@no_tensorrt_here
def test_with_a_gpu_but_no_tensorrt_the_reason_is_the_missing_package(monkeypatch):
    _pretend_gpu_present(monkeypatch)
    status = TensorrtBackend.available()
    assert not status
    assert "tensorrt Python package is not installed" in status.reason
    assert "requirements-gpu.txt" in status.reason


@no_tensorrt_here
def test_with_real_bindings_but_no_libnvinfer_the_reason_names_the_library(monkeypatch, tmp_path, bindings_wheels):
    """The real TensorRT 11.4 bindings wheel on sys.path: its import fails for want of libnvinfer."""
    if _loadable("libnvinfer.so.11"):
        pytest.skip("libnvinfer.so.11 is installed here")
    with zipfile.ZipFile(bindings_wheels["11.4"]) as wheel:
        wheel.extractall(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("tensorrt")]:
        monkeypatch.delitem(sys.modules, name)
    _pretend_gpu_present(monkeypatch)
    status = TensorrtBackend.available()
    assert not status
    assert "bindings (tensorrt_cu13_bindings 11.4" in status.reason and "libnvinfer.so.11" in status.reason
    assert "cannot open shared object file" in status.reason  # the loader's own words
    assert "tensorrt-cu13" in status.reason  # what to install


class _StandInTensorrtModule:
    """Not TensorRT: the availability check reads only ``__version__`` from the module it imported."""

    def __init__(self, version: str) -> None:
        self.__version__ = version


def test_availability_order_after_tensorrt_imports(monkeypatch):
    _pretend_gpu_present(monkeypatch)
    monkeypatch.setattr(trt_availability, "import_tensorrt", lambda: _StandInTensorrtModule("10.8.0.43"))
    status = TensorrtBackend.available()
    assert not status and "10.8.0.43 is too old" in status.reason and "10.12" in status.reason

    monkeypatch.setattr(trt_availability, "import_tensorrt", lambda: _StandInTensorrtModule("11.4.0.106"))
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)  # cuda-python absent
    status = TensorrtBackend.available()
    assert not status and "cuda-python" in status.reason and "cuda-python>=13" in status.reason


def test_ort_gpu_providers_need_onnxruntime_gpu(monkeypatch):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    _pretend_gpu_present(monkeypatch)
    for cls in (OrtCudaBackend, OrtTensorrtBackend):
        status = cls.available()
        assert not status and "install onnxruntime-gpu instead of onnxruntime" in status.reason


@pytest.mark.parametrize(
    ("loadable", "expected"),
    [
        ({10}, ""),
        ({10, 11}, ""),
        ({11}, "only TensorRT 11 (libnvinfer.so.11) is installed"),
        (set(), "needs TensorRT 10 (libnvinfer.so.10 not found)"),
    ],
)
def test_ort_tensorrt_provider_wants_the_tensorrt_major_it_links(loadable, expected):
    reason = ort_tensorrt_reason(10, lambda major: major in loadable)
    assert (reason == "") if not expected else (expected in reason and "tensorrt-cu13>=10.13,<11" in reason)


def _loadable(soname: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def test_backend_package_has_its_modules():
    """The package-wide checks below read these files: a module missing from the list escapes them."""
    assert {"__init__.py", "availability.py", "backend.py", "builder.py", "device.py", "engine_cache.py"} <= set(
        BACKEND_SOURCES
    )


@pytest.mark.parametrize("module", sorted(BACKEND_SOURCES))
def test_backend_module_imports_tensorrt_and_cuda_lazily(module):
    tree = ast.parse(BACKEND_SOURCES[module])
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name for n in top_level for a in n.names} | {getattr(n, "module", None) or "" for n in top_level}
    assert not any(n.split(".")[0] in ("tensorrt", "cuda", "pycuda", "streamlit") for n in names)
    assert "pycuda" not in BACKEND_SOURCES[module]


# ---------------------------------------------------------------------------------------------
# engine cache: keys, paths, invalidation


BASE_KEY = {
    "onnx_sha256": "a" * 64,
    "precision": Precision.FP16,
    "trt_version": "10.16.1.11",
    "gpu_name": "NVIDIA L4",
    "compute_capability": "8.9",
    "input_shape": (1, 3, 640, 640),
}


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("onnx_sha256", "b" * 64),
        ("precision", Precision.INT8),
        ("trt_version", "11.4.0.106"),
        ("gpu_name", "NVIDIA GeForce RTX 4090"),
        ("compute_capability", "8.6"),
        ("input_shape", (1, 3, 320, 320)),
    ],
)
def test_engine_key_changes_with_everything_an_engine_depends_on(field, other):
    base = engine_cache_key(**BASE_KEY)
    assert engine_cache_key(**BASE_KEY) == base  # deterministic
    changed = engine_cache_key(**(BASE_KEY | {field: other}))
    assert changed != base
    onnx = Path("/cache/models/yolov5n-abc/fp16-640-v1.onnx")
    assert engine_path(Path("/c"), onnx, BASE_KEY["precision"], changed) != engine_path(Path("/c"), onnx, "fp16", base)


def test_engine_and_timing_cache_paths():
    key = engine_cache_key(**BASE_KEY)
    path = engine_path(Path("/c/engines"), Path("/m/int8-trt-minmax-640-0123.onnx"), "int8", key)
    assert path.parent == Path("/c/engines/trt") and path.suffix == ".engine"
    assert path.name.startswith("int8-trt-minmax-640-0123.int8.") and key[:16] in path.name
    timing = timing_cache_path(Path("/c/engines"), "10.16.1.11", "NVIDIA GeForce RTX 4090", "8.9")
    assert timing.parent == path.parent and "10.16.1.11" in timing.name and "sm8.9" in timing.name
    assert " " not in timing.name
    assert timing != timing_cache_path(Path("/c/engines"), "11.4.0.106", "NVIDIA GeForce RTX 4090", "8.9")
    assert timing != timing_cache_path(Path("/c/engines"), "10.16.1.11", "NVIDIA L4", "8.9")


@dataclass
class _Builds:
    """Counts builds; each writes a plan of known bytes (a plain byte string, not a TensorRT engine)."""

    payload: bytes = b"PLAN-v1"
    count: int = 0

    def __call__(self, tmp: Path) -> None:
        self.count += 1
        tmp.write_bytes(self.payload)


def _accept(data: bytes) -> bytes | None:
    return data if data.startswith(b"PLAN") else None


def test_engine_cache_builds_once_then_reuses(tmp_path):
    target, builds = tmp_path / "trt" / "m.fp32.k.engine", _Builds()
    obj, load = load_or_build(target, builds, _accept, {"why": "test"})
    assert obj == b"PLAN-v1" and builds.count == 1
    assert load == EngineLoad(target, True, "not cached", load.seconds)
    assert read_verified(target) is not None  # written with its hash sidecar
    obj, load = load_or_build(target, builds, _accept, {})
    assert builds.count == 1 and not load.built and load.reason == ""


def test_damaged_engine_file_is_rebuilt(tmp_path):
    target, builds = tmp_path / "m.engine", _Builds()
    load_or_build(target, builds, _accept, {})
    target.write_bytes(b"PLAN-v1 truncated or edited")  # no longer matches its sidecar hash
    obj, load = load_or_build(target, builds, _accept, {})
    assert builds.count == 2 and load.built and "damaged" in load.reason and obj == b"PLAN-v1"


@pytest.mark.parametrize("failure", ["returns None", "raises"])
def test_engine_tensorrt_refuses_is_rebuilt_not_crashed_on(tmp_path, failure):
    """An intact file TensorRT will not deserialize (other TensorRT build, driver): rebuilt once."""
    target = tmp_path / "m.engine"
    load_or_build(target, _Builds(b"OLD-ENGINE"), lambda d: d, {})  # cached by some earlier install

    def deserialize(data: bytes) -> bytes | None:
        if data.startswith(b"PLAN"):
            return data
        if failure == "raises":
            raise RuntimeError("Serialization assertion failed: magic tag mismatch")
        return None

    builds = _Builds()
    obj, load = load_or_build(target, builds, deserialize, {})
    assert obj == b"PLAN-v1" and builds.count == 1 and load.built and "stale" in load.reason
    assert read_verified(target) is not None and target.read_bytes() == b"PLAN-v1"


def test_engine_that_never_deserializes_is_a_clear_error(tmp_path):
    builds = _Builds()
    with pytest.raises(ConversionError, match="cannot deserialize"):
        load_or_build(tmp_path / "m.engine", builds, lambda d: None, {})
    assert builds.count == 2  # one rebuild, then give up


# ---------------------------------------------------------------------------------------------
# what the ONNX file carries decides the engine's precision


@pytest.fixture(scope="module")
def trt_int8_store(store):
    """The TensorRT-flavour INT8 store test_store.py also uses, so a full run converts it once."""
    from core.model.convert import Int8Options
    from core.model.store import ModelStore

    return ModelStore(store.source, store.cache_root, calib_dir=store.calib_dir, int8=Int8Options(max_images=16))


def test_onnx_precision_is_read_from_the_real_artefacts(store, trt_int8_store):
    fp32 = read_onnx(store.fp32())
    assert fp32.input_name == "images" and fp32.input_shape == (1, 3, 640, 640) and not fp32.dynamic
    assert fp32.output_names == ("output0",)
    check_precision(fp32, Precision.FP32)
    check_precision(read_onnx(store.artefact(Artefact.ONNX_FP16)), Precision.FP16)
    int8 = read_onnx(trt_int8_store.artefact(Artefact.ONNX_INT8_TRT))
    assert int8.precision is Precision.INT8 and int8.int8_flavour is Int8Flavour.TRT  # Q/DQ, no uint8 zero-point
    check_precision(int8, Precision.INT8)
    with pytest.raises(InputError, match="carries fp32 but TensorRT int8 was asked"):
        check_precision(fp32, Precision.INT8)


def test_cpu_flavour_int8_is_refused_with_what_to_use(store):
    cpu = read_onnx(store.artefact(Artefact.ONNX_INT8_CPU))
    assert cpu.int8_flavour is Int8Flavour.CPU  # uint8 zero-points
    with pytest.raises(InputError, match="the trt flavour") as exc:  # the CLI adds "--flavour trt"
        check_precision(cpu, Precision.INT8)
    assert exc.value.setting is Setting.INT8_FLAVOUR


def test_dynamic_input_gets_one_profile(tmp_path):
    path = dynamic_relu_onnx(tmp_path / "dyn.onnx")
    io = read_onnx(path)
    assert io.dynamic and io.input_shape == (-1, 3, -1, -1)
    assert dynamic_profile(io.input_shape) == ((1, 3, 32, 32), (1, 3, 640, 640), (1, 3, 1280, 1280))
    # the engine key carries the dynamic shape, so a static engine is never reused for it
    assert engine_cache_key(**(BASE_KEY | {"input_shape": io.input_shape})) != engine_cache_key(**BASE_KEY)


# ---------------------------------------------------------------------------------------------
# CUDA errors, through the real cuda-python


def test_cuda_errors_become_messages_naming_the_error():
    cudart = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    with pytest.raises(RuntimeUnavailableError, match=r"CUDA could not select GPU 9999: cudaError\w+ \(.+\)"):
        trt_device.cuda_check(cudart, cudart.cudaSetDevice(9999), "select GPU 9999")
    assert trt_device.cuda_check(cudart, cudart.cudaRuntimeGetVersion(), "read the version") > 0


def test_pinned_view_maps_bytes_to_the_tensor_shape():
    buf = np.zeros(2 * 3 * 4, dtype=np.uint8)
    view = trt_device.pinned_view(buf.ctypes.data, buf.nbytes, np.dtype(np.float32), (2, 3))
    view[:] = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(buf.view(np.float32), np.arange(6, dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# conformance: every tensorrt attribute used exists in the TensorRT 10.16 and 11.4 bindings


def _collect_api(source: str, root: str = "trt") -> set[str]:
    """Attribute names used on ``root`` and on values derived from it, found in the syntax tree.

    Taint analysis over names: a variable (or ``self.x``) assigned from an expression rooted at a
    tainted name, annotated with a ``trt.*`` type, or a parameter annotated so, is tainted. Also
    collected: method names of classes subclassing a ``trt`` class (callbacks TensorRT calls) and
    the names given to ``getattr``/``hasattr`` on tainted values.
    """
    tree = ast.parse(source)
    names, selfs = {root}, set()

    def chain(node: ast.AST) -> tuple[str | None, list[str]]:
        attrs: list[str] = []
        while True:
            if isinstance(node, ast.Attribute):
                attrs.append(node.attr)
                node = node.value
            elif isinstance(node, ast.Call):
                node = node.func
            elif isinstance(node, ast.Subscript):
                node = node.value
            elif isinstance(node, ast.Name):
                return node.id, attrs[::-1]
            else:
                return None, []

    def rooted(node: ast.AST | None) -> list[str] | None:
        """The trt-side attribute names of ``node`` if it is rooted at a tainted value, else None."""
        if node is None:
            return None
        if isinstance(node, ast.BinOp | ast.BoolOp):  # e.g. `trt.X | None` annotations
            parts = [rooted(v) for v in ([node.left, node.right] if isinstance(node, ast.BinOp) else node.values)]
            hits = [name for part in parts if part is not None for name in part]
            return hits if any(p is not None for p in parts) else None
        base, attrs = chain(node)
        if base in names:
            return attrs
        if base == "self" and attrs and attrs[0] in selfs:
            return attrs[1:]
        return None

    def taint(target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            selfs.add(target.attr)
        elif isinstance(target, ast.Tuple):
            for elt in target.elts:
                taint(elt)

    found: set[str] = set()
    for _ in range(10):  # to a fixed point
        before = (len(names), len(selfs))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and rooted(node.value) is not None:
                for target in node.targets:
                    taint(target)
            elif isinstance(node, ast.AnnAssign) and rooted(node.annotation) is not None:
                taint(node.target)
            elif isinstance(node, ast.arg) and rooted(node.annotation) is not None:
                names.add(node.arg)
        if (len(names), len(selfs)) == before:
            break
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            attrs = rooted(node)
            if attrs:
                found.update(attrs)
        elif isinstance(node, ast.ClassDef) and any(rooted(b) is not None for b in node.bases):
            found.update(f.name for f in node.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("_"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
            and rooted(node.args[0]) is not None
            and isinstance(node.args[1], ast.Constant)
        ):
            found.add(node.args[1].value)
    return found


# Weakly typed precision flags, calibrators and the pre-10 binding API: gone in 10.x or 11.x.
FORBIDDEN = re.compile(
    r"^(build_engine|build_cuda_engine|max_batch_size|execute_async_v2|execute_v2|int8_calibrator|FP16|INT8|BF16|"
    r"EXPLICIT_BATCH|OBEY_PRECISION_CONSTRAINTS|PREFER_PRECISION_CONSTRAINTS|set_flag|platform_has_fast_\w+|"
    r"get_binding_\w+|binding_is_input|num_bindings|IInt8\w*)$"
)


def test_collector_sees_forbidden_usage():
    """The drift guard itself: weakly typed code written the usual ways is noticed."""
    old = """
def build(path):
    trt = import_tensorrt()
    builder = trt.Builder(trt.Logger())
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    config.int8_calibrator = Calib()
    return builder.build_engine(network, config)

class Calib(trt.IInt8EntropyCalibrator2):
    def get_batch(self, names): ...

def run(self, engine: trt.ICudaEngine):
    self.ctx = engine.create_execution_context()
    self.ctx.execute_async_v2(bindings, stream)
    return getattr(engine, "max_batch_size", 1)
"""
    used = _collect_api(old)
    assert {"set_flag", "FP16", "int8_calibrator", "build_engine", "IInt8EntropyCalibrator2", "get_batch"} <= used
    assert {"execute_async_v2", "max_batch_size", "create_execution_context"} <= used
    assert {n for n in used if FORBIDDEN.match(n)} >= {"FP16", "build_engine", "execute_async_v2", "max_batch_size"}


def test_api_list_is_exactly_what_the_backend_uses():
    used = {name for source in BACKEND_SOURCES.values() for name in _collect_api(source)}
    assert used == set(TRT_API_USED), (
        f"update TRT_API_USED: used but not listed {sorted(used - set(TRT_API_USED))}, "
        f"listed but not used {sorted(set(TRT_API_USED) - used)}"
    )
    assert len(TRT_API_USED) == len(set(TRT_API_USED))


def test_backend_uses_no_removed_or_weakly_typed_api():
    assert not [n for n in TRT_API_USED if FORBIDDEN.match(n)]
    code = "\n".join(line.split("#")[0] for source in BACKEND_SOURCES.values() for line in source.splitlines())
    assert "NetworkDefinitionCreationFlag.STRONGLY_TYPED" in code
    assert "execute_async_v3" in code and "build_serialized_network" in code


WHEEL_CACHE = Path(os.environ.get("YOLOLAB_WHEEL_CACHE") or Path.home() / ".cache" / "yololab" / "wheels")
OFFLINE_MARKERS = (
    "NewConnectionError",
    "Max retries exceeded",
    "Could not fetch URL",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
)


def _bindings_wheel(series: str) -> Path:
    """The tensorrt-cu13-bindings wheel of a release series (e.g. "11.4"), downloaded once into the cache.

    One fixed platform (manylinux x86_64, CPython 3.11): the names in the module do not depend on it.
    """
    pattern = f"tensorrt_cu13_bindings-{series}.*-cp311-*manylinux*x86_64.whl"
    for cached in sorted(WHEEL_CACHE.glob(pattern), reverse=True):
        try:
            with zipfile.ZipFile(cached) as z:
                z.getinfo(next(n for n in z.namelist() if n.endswith("__init__.py")))
            return cached
        except (zipfile.BadZipFile, StopIteration, KeyError):
            cached.unlink()
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"]
    cmd += ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp"]
    cmd += ["--timeout", "30", "--retries", "2", "-d", str(WHEEL_CACHE), f"tensorrt-cu13-bindings=={series}.*"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        offline = [line.strip() for line in output.splitlines() if any(m in line for m in OFFLINE_MARKERS)]
        if offline:
            pytest.skip(f"PyPI is unreachable, cannot fetch tensorrt-cu13-bindings {series}: {offline[-1][-200:]}")
        raise AssertionError(f"pip could not download tensorrt-cu13-bindings=={series}.*:\n{output[-2000:]}")
    found = sorted(WHEEL_CACHE.glob(pattern), reverse=True)
    assert found, f"pip reported success but no {pattern} in {WHEEL_CACHE}"
    return found[0]


@pytest.fixture(scope="session")
def bindings_wheels() -> dict[str, Path]:
    return {series: _bindings_wheel(series) for series in BINDINGS_SERIES}


@dataclass(frozen=True)
class BindingNames:
    version: str
    strings: frozenset[bytes]  # NUL-terminated strings of the extension module
    blob: bytes
    python_names: frozenset[str]  # names defined by the package's __init__.py (nptype, __version__, ...)

    def has(self, name: str) -> bool:
        """Whether ``name`` is registered in the module.

        pybind11 registers classes, methods and enum members by string literal, and the linker stores
        a literal that ends another one inside it ("Builder" lives in "IExprBuilder\\0"), so a name
        counts when it is a whole string or the tail of one. The negative controls in the tests show
        this still tells removed APIs apart.
        """
        if name in self.python_names:
            return True
        raw = name.encode()
        return raw in self.strings or (raw + b"\0") in self.blob


def _binding_names(wheel: Path) -> BindingNames:
    with zipfile.ZipFile(wheel) as z:
        members = z.namelist()
        so = next(n for n in members if re.search(r"tensorrt_bindings/tensorrt[^/]*\.so$", n))
        init = next(n for n in members if n.endswith("tensorrt_bindings/__init__.py"))
        blob = z.read(so)
        init_src = z.read(init).decode()
    python_names: set[str] = set()
    for node in ast.walk(ast.parse(init_src)):
        if isinstance(node, ast.FunctionDef):
            python_names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    python_names.add(target.id)
                elif isinstance(target, ast.Attribute):
                    python_names.add(target.attr)
    version = re.search(r'__version__ = "([^"]+)"', init_src)
    return BindingNames(
        version.group(1) if version else "?", frozenset(blob.split(b"\0")), blob, frozenset(python_names)
    )


@pytest.fixture(scope="session")
def bindings(bindings_wheels) -> dict[str, BindingNames]:
    return {series: _binding_names(path) for series, path in bindings_wheels.items()}


def test_bindings_are_the_releases_asked_for(bindings):
    for series, names in bindings.items():
        assert names.version.startswith(series + "."), (series, names.version)


def test_name_scan_tells_removed_apis_apart(bindings):
    """Negative controls: TensorRT 11 removed the weakly typed API; 10 removed the binding API."""
    old, new = bindings["10.16"], bindings["11.4"]
    for name in ("int8_calibrator", "IInt8EntropyCalibrator2", "EXPLICIT_BATCH", "platform_has_fast_fp16", "FP16"):
        assert old.has(name) and not new.has(name), name
    for name in ("build_engine", "build_cuda_engine", "execute_async_v2", "get_binding_shape", "get_binding_index"):
        assert not old.has(name) and not new.has(name), name
    assert not new.has("surely_not_a_tensorrt_name_v9")


@pytest.mark.parametrize("series", BINDINGS_SERIES)
def test_every_tensorrt_name_the_backend_uses_exists(bindings, series):
    names = bindings[series]
    missing = [n for n in TRT_API_USED if not names.has(n)]
    assert not missing, f"not in the TensorRT {names.version} bindings: {missing}"


def test_every_cuda_python_name_the_backend_uses_exists():
    """cuda-python installs everywhere (no driver needed to import it): checked against the real module."""
    cudart = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    chains: set[tuple[str, ...]] = set()
    for node in (n for source in BACKEND_SOURCES.values() for n in ast.walk(ast.parse(source))):
        if isinstance(node, ast.Attribute):
            attrs, cur = [], node
            while isinstance(cur, ast.Attribute):
                attrs.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id == "cudart":
                chains.add(tuple(attrs[::-1]))
    assert {("cudaMemcpyAsync",), ("cudaMalloc",), ("cudaStreamSynchronize",)} <= chains
    for chain in sorted(chains):
        obj = cudart
        for attr in chain:
            assert hasattr(obj, attr), f"cuda.bindings.runtime has no {'.'.join(chain)}"
            obj = getattr(obj, attr)


def test_build_progress_from_tensorrts_threads_reaches_the_caller_on_the_callers_thread():
    """TensorRT calls its progress monitor from its own threads; what the user's progress bar gets comes
    from the thread that asked for the build (Streamlit and tqdm are not thread-safe), in order, never
    going back. Real threads stand in for TensorRT's; nothing here is TensorRT."""
    import threading
    import time

    from core.runtime.backends.tensorrt.builder import BuildPhases, run_reporting

    phases = BuildPhases()
    caller = threading.get_ident()
    seen: list[tuple[float, str, int]] = []

    def build() -> str:
        phases.start("Building engine", None, 4)
        for outer in range(4):

            def tactics(outer: int = outer) -> None:
                name = f"Tactics {outer}"
                phases.start(name, "Building engine", 50)
                for step in range(50):
                    phases.step(name, step)
                    time.sleep(0.001)
                phases.finish(name)

            workers = [threading.Thread(target=tactics) for _ in range(3)]  # concurrent callbacks
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            phases.step("Building engine", outer)
        phases.finish("Building engine")
        return "plan"

    plan = run_reporting(build, phases, lambda f, text: seen.append((f, text, threading.get_ident())), every=0.02)
    assert plan == "plan" and len(seen) >= 3
    assert {ident for *_, ident in seen} == {caller}
    fractions = [f for f, *_ in seen]
    assert fractions == sorted(fractions) and 0 < fractions[-1] <= 1.0

    def broken() -> None:
        raise RuntimeError("out of device memory")

    with pytest.raises(RuntimeError, match="out of device memory"):
        run_reporting(broken, BuildPhases(), lambda f, t: None)


def test_the_trt_int8_file_is_int8_convolutions_in_an_fp16_graph(trt_int8_store, bus_image):
    """What strong typing will run: Q/DQ with FP16 scales and int8 zero-points of 0 on the inputs of the
    convolutions only (activation and weights, never a Conv's output), FP16 between them, FP32 at the
    edges, and no FP16 arithmetic feeding a shape. Run here on ONNX Runtime's CPU, it finds the bus."""
    import onnx

    from core.runtime.onnx_file import fp16_shape_inputs
    from core.runtime.processing import PostParams

    path = trt_int8_store.artefact(Artefact.ONNX_INT8_TRT)
    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producers = {out: node for node in graph.node for out in node.output}
    quantize = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    dequantize = [n for n in graph.node if n.op_type == "DequantizeLinear"]
    assert quantize and dequantize and max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 19
    f16, i8 = onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8
    for n in quantize + dequantize:
        assert inits[n.input[1]].data_type == f16, n.name  # FP16 scales
        zero = inits[n.input[2]]
        assert zero.data_type == i8 and not onnx.numpy_helper.to_array(zero).any(), n.name  # symmetric
    for dq in dequantize:  # every DQ is there for a convolution (an activation it shares may feed an Add too)
        assert "Conv" in {c.op_type for c in consumers[dq.output[0]]}, dq.name
    for q in quantize:  # and no Conv output is quantized as such
        assert producers.get(q.input[0]) is None or producers[q.input[0]].op_type != "Conv", q.name
    assert sum(i.data_type == f16 for i in graph.initializer if i.name not in {n.input[1] for n in quantize}) > 0
    assert all(t.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for t in [*graph.input, *graph.output])
    assert fp16_shape_inputs(model) == []

    from core.runtime.detector import Detector

    backend = create_backend(Runtime.ORT)  # the same file on ONNX Runtime's CPU
    backend.load(path, Precision.INT8)
    found = Detector(Variant(Runtime.ORT, Precision.INT8), backend, trt_int8_store.info(), trt_int8_store.input_hw)
    names = sorted(found.detect(bus_image, PostParams()).detections.class_names)
    assert names.count("person") >= 3 and "bus" in names
