"""Shared fixtures: the real YOLOv5n checkpoint and COCO sets from ../shared, built artefacts per session.

``YOLOLAB_SHARED`` points at the shared data folder (``.ci/run`` sets it); without it, ``../shared``
beside the checkout is used. Tests that need it skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("YOLOLAB_SHARED", ROOT.parent / "shared")).resolve()


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set YOLOLAB_SHARED to the shared folder)")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def yolov5n_pt(shared: Path) -> Path:
    return _need(shared / "models" / "yolov5n.pt")


@pytest.fixture(scope="session")
def calib_dir(shared: Path) -> Path:
    return _need(shared / "datasets" / "coco128")


@pytest.fixture(scope="session")
def val_dir(shared: Path) -> Path:
    return _need(shared / "datasets" / "coco-val128")


@pytest.fixture(scope="session")
def videos_dir(shared: Path) -> Path:
    return _need(shared / "videos")


@pytest.fixture(scope="session")
def bus_jpg() -> Path:
    from core.data.samples import sample_image

    return sample_image("bus.jpg")


@pytest.fixture(scope="session")
def bus_image(bus_jpg: Path):
    from core.data.images import load_image

    return load_image(bus_jpg)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artefact cache for the whole run, so each real conversion happens once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def store(yolov5n_pt: Path, calib_dir: Path, session_cache: Path):
    """YOLOv5n at 640 with the default INT8 settings, calibrated on coco128."""
    from core.model.sources import resolve_model
    from core.model.store import ModelStore

    return ModelStore(resolve_model(yolov5n_pt), cache_root=session_cache, calib_dir=calib_dir)


@pytest.fixture(scope="session")
def detectors(store):
    """Every CPU variant this machine can run, loaded, shared by the tests that only read from them (a BF16 variant
    is absent on a CPU without native BF16: :func:`runnable` skips a test that asks for it, with the reason)."""
    from core.runtime import availability
    from core.variants import CPU_VARIANTS

    opened = {str(v): store.open_detector(v) for v in CPU_VARIANTS if availability(v.runtime, v.precision)}
    yield opened
    for d in opened.values():
        d.close()


@pytest.fixture
def app_env(monkeypatch, yolov5n_pt, calib_dir, val_dir, videos_dir, session_cache):
    """The environment the app reads at start, pointing at the shared model, sets and clips."""
    monkeypatch.setenv("YOLOLAB_SAMPLE_VIDEOS", str(videos_dir))
    monkeypatch.setenv("YOLOLAB_MODEL", str(yolov5n_pt))
    monkeypatch.setenv("YOLOLAB_CALIB_DIR", str(calib_dir))
    monkeypatch.setenv("YOLOLAB_EVAL_DATA", str(val_dir))
    monkeypatch.setenv("YOLOLAB_CACHE_DIR", str(session_cache))


def runnable(detectors: dict, variant: str):
    """``detectors[variant]``, or a skip saying why this machine cannot run it (BF16 needs native support)."""
    if variant not in detectors:
        from core.runtime import availability
        from core.variants import Variant

        v = Variant.parse(variant)
        pytest.skip(f"{variant}: {availability(v.runtime, v.precision).reason}")
    return detectors[variant]
