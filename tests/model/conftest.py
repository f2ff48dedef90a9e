"""Fixtures of the model room's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ultralytics_pt(tmp_path_factory) -> Path:
    """A real ultralytics checkpoint (YOLOv8n architecture, untrained weights: no hub download here)."""
    import os

    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("ul") / "v8n.pt"
    YOLO("yolov8n.yaml").save(str(path))
    return path
