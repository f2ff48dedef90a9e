"""Issue 5, model files: each unusable or unsafe file refused with its reason, in the CLI and on the Models page.

The loaders are tested one by one in test_legacy_yolov5.py and test_sources.py; here the same files go
through ``python -m core detect`` (in process: same parser and error handling, without a fresh
interpreter per case) and through the Models page's upload. A pickle that would run code creates a
marker file when it does: the marker must never appear. The active model must not change on a refusal.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.cli import main

from ..helpers import (
    MarkerPayload,
    custom_class_checkpoint,
    hostile_checkpoint,
    random_bytes,
    save_legacy_checkpoint,
    tiny_classifier_onnx,
)

ROOT = Path(__file__).resolve().parents[2]


def _broken_layers(yolov5n_pt: Path, path: Path) -> Path:
    """A YOLOv5 checkpoint whose first convolution was edited to the wrong shape: loads, cannot run."""
    from core.runtime.legacy_yolov5 import load_legacy

    model = copy.deepcopy(load_legacy(yolov5n_pt).model)
    model.model[0].conv.weight = torch.nn.Parameter(torch.zeros(8, 3, 3, 3))
    return save_legacy_checkpoint(model, path)


def _hostile_ultralytics(path: Path, marker: Path) -> Path:
    """A real ultralytics checkpoint with a payload that creates ``marker`` when unpickled."""
    import os

    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    YOLO("yolov8n.yaml").save(str(path))
    ckpt = torch.load(str(path), weights_only=False)  # our own file, made just above
    ckpt["evil"] = MarkerPayload(marker)
    torch.save(ckpt, str(path))
    assert not marker.exists()
    return path


# name -> (how to make it, the words the one-line refusal must contain)
CASES = {
    "noise.onnx": (lambda d, pt, m: random_bytes(d / "noise.onnx"), "not a readable ONNX model"),
    "classifier.onnx": (lambda d, pt, m: tiny_classifier_onnx(d / "classifier.onnx"), "expected a detector output"),
    "noise.pt": (lambda d, pt, m: random_bytes(d / "noise.pt"), "not a readable PyTorch checkpoint"),
    "evil.pt": (
        lambda d, pt, m: hostile_checkpoint(d / "evil.pt", m, disguise_as_yolov5=False),
        "not a YOLOv5/ultralytics detection checkpoint",
    ),
    "evil-yolov5.pt": (
        lambda d, pt, m: hostile_checkpoint(d / "evil-yolov5.pt", m, disguise_as_yolov5=True),
        "outside the YOLOv5 allow-list",
    ),
    "evil-ultralytics.pt": (
        lambda d, pt, m: _hostile_ultralytics(d / "evil-ultralytics.pt", m),
        "is an ultralytics checkpoint",
    ),
    "edited-layers.pt": (
        lambda d, pt, m: _broken_layers(pt, d / "edited-layers.pt"),
        "layers do not fit together",
    ),
}


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, yolov5n_pt) -> tuple[dict[str, Path], Path]:
    d = tmp_path_factory.mktemp("models")
    marker = d / "CODE-RAN"
    return {name: make(d, yolov5n_pt, marker) for name, (make, _) in CASES.items()}, marker


@pytest.mark.parametrize("name", list(CASES))
def test_cli_refuses_each_file_with_one_line_and_runs_no_code(name, bad_models, bus_jpg, tmp_path, capsys):
    models, marker = bad_models
    code = main(["detect", str(bus_jpg), "--model", str(models[name]), "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert code == 2 and len(lines) == 1, err
    assert name in lines[0] and CASES[name][1] in lines[0], lines[0]
    assert "Traceback" not in err
    assert not marker.exists()


def test_cli_custom_class_count_checkpoint_works_with_its_own_names(yolov5n_pt, bus_jpg, tmp_path, capsys):
    names = ["cat", "dog", "bird"]
    pt = custom_class_checkpoint(yolov5n_pt, tmp_path / "pets.pt", names)
    code = main(["detect", str(bus_jpg), "--model", str(pt), "--cache-dir", str(tmp_path / "cache"),
                 "--conf", "0.05", "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    found = {d["class_name"] for r in out["results"] for d in r["detections"]}
    assert found and found <= set(names)  # an untrained head finds "things", always under its own names


# ---------------------------------------------------------------------------------------------
# the Models page


def upload_model(at: AppTest, path: Path, trust: bool = False) -> None:
    at.radio(key="models:kind").set_value("Upload .pt / .onnx")
    at.run()
    at.file_uploader(key="models:upload").set_value((path.name, path.read_bytes(), "application/octet-stream"))
    if trust:
        at.checkbox(key="models:trust").check()
    at.run()
    next(b for b in at.button if b.label == "Use this model").click()
    at.run()


@pytest.mark.parametrize("name", list(CASES))
def test_models_page_refuses_each_file_and_keeps_the_active_model(name, bad_models, app_env):
    models, marker = bad_models
    at = AppTest.from_file(str(ROOT / "pages" / "models.py"), default_timeout=600)
    at.run()
    before = at.session_state["model_choice"]
    upload_model(at, models[name])
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and CASES[name][1] in errors[0], errors
    assert at.session_state["model_choice"] == before  # every page keeps working with the old model
    assert any("active model is still" in c.value for c in at.caption)
    assert dict((m.label, m.value) for m in at.metric)["classes"] == "80"  # the page still shows yolov5n
    assert not marker.exists()


def test_models_page_custom_class_checkpoint_becomes_active_with_its_names(app_env, yolov5n_pt, tmp_path):
    pt = custom_class_checkpoint(yolov5n_pt, tmp_path / "pets.pt", ["cat", "dog", "bird"])
    at = AppTest.from_file(str(ROOT / "pages" / "models.py"), default_timeout=600)
    at.run()
    upload_model(at, pt)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Using" in s.value and "pets.pt" in s.value for s in at.success)
    assert dict((m.label, m.value) for m in at.metric)["classes"] == "3"
    assert at.session_state["model_choice"].spec.endswith("pets.pt")
