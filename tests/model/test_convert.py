"""Conversion keeps stdout for results: what libraries print while converting goes to stderr."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.model.convert import chatter_to_stderr

ROOT = Path(__file__).resolve().parents[2]


def test_prints_and_stdout_log_handlers_go_to_stderr_and_come_back(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    logger = logging.getLogger("yololab-test-chatty")  # like ultralytics: a handler bound to stdout at import
    handler = logging.StreamHandler(sys.stdout)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with chatter_to_stderr():
            print("Ultralytics 8.4 banner")
            logger.info("ONNX: starting export")
        assert out.getvalue() == ""
        assert "Ultralytics 8.4 banner" in err.getvalue() and "ONNX: starting export" in err.getvalue()
        assert handler.stream is out and sys.stdout is out  # put back
        print("result")
        assert out.getvalue() == "result\n"
    finally:
        logger.removeHandler(handler)


@pytest.mark.slow
def test_exporting_an_ultralytics_checkpoint_prints_nothing_on_stdout(ultralytics_pt, tmp_path):
    """ultralytics' export banner used to land in stdout, before the CLI's --json."""
    script = (
        "import sys\n"
        "from core.model import ModelStore, resolve_model\n"
        "store = ModelStore(resolve_model(sys.argv[1], trust=True), cache_root=sys.argv[2], imgsz=320)\n"
        "store.fp32()\n"
        "print('done')\n"
    )
    env = {**os.environ, "YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false"}
    run = subprocess.run(
        [sys.executable, "-c", script, str(ultralytics_pt), str(tmp_path / "cache")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout == "done\n"
    assert "ONNX:" in run.stderr  # the export's log went to stderr, not nowhere
