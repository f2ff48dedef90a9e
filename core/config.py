"""Where things live on disk, and the environment variables that move them."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "yololab"

ENV_CACHE_DIR = "YOLOLAB_CACHE_DIR"  # converted artefacts (ONNX variants, engines)
ENV_MODELS_DIR = "YOLOLAB_MODELS_DIR"  # official checkpoints (yolov5n.pt ...): looked up, then downloaded here
ENV_WEIGHTS_URL = "YOLOLAB_WEIGHTS_URL"  # base URL of the official checkpoints (a mirror, or a test server)
ENV_CLUSTER = "YOLOLAB_CLUSTER"  # a Ray cluster (HOST:PORT, or auto) for variants placed on nodes

OFFICIAL_WEIGHTS_URL = "https://github.com/ultralytics/yolov5/releases/download/v7.0"
OFFICIAL_MODELS = ("yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x")

DEFAULT_IMGSZ = 640
MAX_IMAGE_PIXELS = 50_000_000  # larger images are refused before decoding (decompression bombs)


def cache_dir(explicit: str | Path | None = None) -> Path:
    """``--cache-dir``, else ``$YOLOLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/yololab`` (``~/.cache/yololab``)."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / APP_NAME


def models_dir(explicit: str | Path | None = None, cache: Path | None = None) -> Path:
    """``--models-dir``, else ``$YOLOLAB_MODELS_DIR``, else ``<cache dir>/weights``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_MODELS_DIR):
        return Path(os.environ[ENV_MODELS_DIR]).expanduser()
    return (cache or cache_dir()) / "weights"


def weights_url() -> str:
    return os.environ.get(ENV_WEIGHTS_URL, OFFICIAL_WEIGHTS_URL).rstrip("/")
