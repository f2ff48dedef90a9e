"""The CLI's errors: the tool's one line comes first and alone (no library log before it), and with ``--json``
an error is a JSON object on stdout too (issue "the first five minutes", item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from .test_cli import run


def _unloadable_onnx(path: Path) -> Path:
    """A detector-shaped ONNX model that our reader accepts and ONNX Runtime cannot load (an unknown op)."""
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])
    output = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 25200, 85])
    node = helper.make_node("NoSuchOp", ["images"], ["output0"], domain="ai.example")
    graph = helper.make_graph([node], "unloadable", [images], [output])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.example", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def test_a_model_onnx_runtime_cannot_load_is_one_line_and_no_log(bus_jpg, session_cache, tmp_path):
    bad = _unloadable_onnx(tmp_path / "bad.onnx")
    p = run("detect", str(bus_jpg), "--model", str(bad), cache=session_cache)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and "bad.onnx" in errors[0], p.stderr
    # what else is on stderr is the tool's own progress, never ONNX Runtime's log (red, "[E:onnxruntime:")
    assert lines[-1] == errors[0], p.stderr
    assert "\x1b[" not in p.stderr and ":onnxruntime:" not in p.stderr, p.stderr
    assert all(ln.startswith(("error: ", "prepare ")) for ln in lines), p.stderr


def test_with_json_an_error_is_json_on_stdout(session_cache, tmp_path):
    p = run("eval", "--data", str(tmp_path / "no-such-set"), "--model", "yolov5n", "--json", cache=session_cache)
    assert p.returncode == 2, p.stderr
    out = json.loads(p.stdout)
    assert out["kind"] == "error" and "no-such-set" in out["error"] and out["exit_code"] == 2
    assert p.stderr.strip() == f"error: {out['error']}"

    # a usage error from the parser too, when --json is on the command line
    p = run("eval", "--json", "--model", "yolov5n", cache=session_cache)
    assert p.returncode == 2
    out = json.loads(p.stdout)
    assert out["kind"] == "error" and "--data" in out["error"] and p.stderr.strip() == f"error: {out['error']}"

    p = run("eval", "--data", str(tmp_path / "no-such-set"), "--model", "yolov5n", cache=session_cache)
    assert p.returncode == 2 and p.stdout == ""  # without --json, stdout stays empty
