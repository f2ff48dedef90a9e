import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cache import cached_build, read_verified, sha256_file


def test_builds_once_then_serves_from_cache(tmp_path):
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        tmp.write_bytes(b"artefact")

    target = tmp_path / "a.bin"
    first = cached_build(target, build, {"k": 1})
    second = cached_build(target, build, {"k": 1})
    assert len(calls) == 1 and first.sha256 == second.sha256 == sha256_file(target)
    assert json.loads(target.with_name("a.bin.json").read_text())["k"] == 1


def test_a_tampered_or_truncated_artefact_is_detected_and_rebuilt(tmp_path):
    target = tmp_path / "a.bin"
    cached_build(target, lambda p: p.write_bytes(b"good artefact"), {})
    target.write_bytes(b"good art")  # truncated behind the cache's back
    assert read_verified(target) is None
    rebuilt = cached_build(target, lambda p: p.write_bytes(b"good artefact"), {})
    assert target.read_bytes() == b"good artefact" and rebuilt.sha256 == sha256_file(target)


def test_a_failed_build_leaves_nothing_that_is_later_used(tmp_path):
    target = tmp_path / "a.bin"

    def boom(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cached_build(target, boom, {})
    assert not target.exists() and read_verified(target) is None
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".part"]


_CHILD = """
import sys, time
from pathlib import Path
from core.cache import cached_build

target, log = Path(sys.argv[1]), Path(sys.argv[2])

def build(tmp):
    with log.open("a") as f:
        f.write("build\\n")
    time.sleep(0.5)
    tmp.write_bytes(b"x" * 1000)

cached_build(target, build, {})
"""


def test_two_processes_building_the_same_artefact_build_it_once(tmp_path):
    # separate interpreters (not multiprocessing: its spawn re-imports whatever __main__ the runner has)
    target, log = tmp_path / "shared.bin", tmp_path / "log.txt"
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(target), str(log)], cwd=root) for _ in range(2)]
    assert [p.wait(60) for p in procs] == [0, 0]
    assert log.read_text().count("build") == 1
    assert read_verified(target) is not None


def test_an_edit_that_keeps_size_and_mtime_is_still_detected(tmp_path):
    import os

    target = tmp_path / "a.bin"
    cached_build(target, lambda p: p.write_bytes(b"good artefact"), {})
    assert read_verified(target) is not None  # hashed and memoised
    st = target.stat()
    target.write_bytes(b"evil artefact")  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime back
    assert read_verified(target) is None


# ---------------------------------------------------------------------------------------------
# the real model through the CLI: two processes at once, damage, a killed build


def _convert(cache: Path, model: Path, to: str) -> subprocess.Popen:
    import os

    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "core", "convert", "--model", str(model), "--to", to, "--cache-dir", str(cache)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def converted(yolov5n_pt, tmp_path_factory) -> tuple[Path, Path, str, str]:
    """Two `python -m core convert --to fp16` of the same model started at once on an empty cache."""
    cache = tmp_path_factory.mktemp("two-procs")
    procs = [_convert(cache, yolov5n_pt, "fp16") for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    paths = {o.strip() for o, _ in outs}
    assert len(paths) == 1
    return cache, Path(paths.pop()), outs[0][1], outs[1][1]


@pytest.mark.slow
def test_two_cli_conversions_of_the_same_model_at_once_build_one_good_artefact(converted, bus_image):
    from core.model.sources import resolve_model  # noqa: F401
    from core.runtime.detector import Detector  # noqa: F401  (the artefact must load and detect below)

    cache, fp16, err_a, err_b = converted
    logs = err_a + err_b
    assert logs.count("exporting yolov5n.pt to ONNX") == 1, logs  # one process built, the other waited
    assert logs.count("converting to FP16") == 1, logs
    assert read_verified(fp16) is not None and read_verified(fp16.with_name(fp16.name.replace("fp16", "fp32")))
    assert not list(cache.rglob("*.part"))
    _assert_detects_bus(fp16, bus_image)


def _assert_detects_bus(artefact: Path, bus_image) -> None:
    from core.runtime.backends import create_backend
    from core.runtime.detector import Detector
    from core.runtime.onnx_file import inspect_onnx
    from core.variants import Precision, Runtime, Variant

    backend = create_backend(Runtime.ORT)
    backend.load(artefact, Precision.FP16)
    with Detector(Variant(Runtime.ORT, Precision.FP16), backend, inspect_onnx(artefact), (640, 640)) as d:
        assert sorted(d.detect(bus_image).detections.to_records(), key=lambda r: r["class_name"])[0]["class_name"]
        assert len(d.detect(bus_image).detections) == 4


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "same size, old mtime", "sidecar edited", "sidecar missing"])
def test_a_damaged_real_artefact_is_detected_and_rebuilt(converted, yolov5n_pt, bus_image, damage):
    import os

    from core.model.sources import resolve_model
    from core.model.store import ModelStore
    from core.variants import Artefact

    cache, fp16, _, _ = converted
    store = ModelStore(resolve_model(yolov5n_pt), cache_root=cache)
    assert store.path_for(Artefact.ONNX_FP16) == fp16
    good = read_verified(fp16)
    assert good is not None
    side = fp16.with_name(fp16.name + ".json")
    if damage == "truncated":
        fp16.write_bytes(fp16.read_bytes()[: good.size // 2])
    elif damage == "same size, old mtime":
        st = fp16.stat()
        data = bytearray(fp16.read_bytes())
        data[good.size // 2] ^= 0xFF
        fp16.write_bytes(bytes(data))
        os.utime(fp16, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif damage == "sidecar edited":
        side.write_text(json.dumps(dict(json.loads(side.read_text()), sha256="0" * 64)))
    else:
        side.unlink()
    assert read_verified(fp16) is None  # detected
    assert store.artefact(Artefact.ONNX_FP16) == fp16  # rebuilt under the same name
    rebuilt = read_verified(fp16)
    assert rebuilt is not None and rebuilt.size > good.size // 2
    _assert_detects_bus(fp16, bus_image)


@pytest.mark.slow
def test_a_killed_conversion_leaves_nothing_that_is_used_later(yolov5n_pt, tmp_path, bus_image):
    import signal
    import time

    proc = _convert(tmp_path, yolov5n_pt, "fp16")
    for _ in range(1200):  # the build starts once the interpreter and torch are loaded
        parts = list(tmp_path.rglob(".*.part"))
        if parts or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert parts, "the conversion never started writing"
    time.sleep(1.0)  # let it write for a moment
    proc.send_signal(signal.SIGKILL)  # no finally, no cleanup: the worst case
    proc.wait(30)
    finals = [p for p in tmp_path.rglob("*.onnx") if not p.name.startswith(".")]
    assert all(read_verified(p) is None for p in finals)  # nothing under a final name verifies...
    assert list(tmp_path.rglob(".*.part"))  # ...only the killed build's temporary file is left

    again = _convert(tmp_path, yolov5n_pt, "fp16")
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    fp16 = Path(out.strip())
    assert read_verified(fp16) is not None
    assert not list(tmp_path.rglob(".*.part"))  # the next build of the same artefact swept it away
    _assert_detects_bus(fp16, bus_image)
