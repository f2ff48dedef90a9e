import functools
import http.server
import threading

import pytest

from core.cache import sha256_file
from core.config import ENV_CACHE_DIR, ENV_MODELS_DIR, ENV_WEIGHTS_URL
from core.errors import InputError, ModelError, Setting, UnsafeModelError
from core.model import sources
from core.model.sources import SourceKind, SourceOrigin, resolve_model

YOLOV5N_SHA256 = "4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3"
UNREACHABLE = "http://127.0.0.1:9/"  # nothing listens on the discard port


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A fresh machine with no network: empty models dir, fresh cache, an unreachable weights URL."""
    models, cache = tmp_path / "models", tmp_path / "cache"
    models.mkdir()
    monkeypatch.setenv(ENV_MODELS_DIR, str(models))
    monkeypatch.setenv(ENV_CACHE_DIR, str(cache))
    monkeypatch.setenv(ENV_WEIGHTS_URL, UNREACHABLE)
    return models


def test_yolov5n_resolves_offline_to_the_bundled_checkpoint(offline):
    bundled = (sources.BUNDLED_DIR / "yolov5n.pt").resolve()
    src = resolve_model("yolov5n")
    assert src.path == bundled and src.kind is SourceKind.LEGACY_PT and src.sha256 == YOLOV5N_SHA256
    assert src.origin is SourceOrigin.BUNDLED
    assert src.provenance == "bundled with the app (assets/models/yolov5n.pt, AGPL-3.0)"
    assert not list(offline.iterdir())  # nothing downloaded
    assert resolve_model(bundled).origin is SourceOrigin.BUNDLED  # named by its path: the same check
    with pytest.raises(ModelError, match=r"could not download yolov5s\.pt"):
        resolve_model("yolov5s")  # the other official names still download


def test_a_changed_bundled_checkpoint_is_refused_and_never_loaded(offline, tmp_path, monkeypatch):
    shipped = tmp_path / "assets" / "models"
    shipped.mkdir(parents=True)
    data = bytearray((sources.BUNDLED_DIR / "yolov5n.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (shipped / "yolov5n.pt").write_bytes(data)
    monkeypatch.setattr(sources, "BUNDLED_DIR", shipped)

    def must_not_open(path):
        raise AssertionError(f"{path} was opened")

    monkeypatch.setattr(sources, "classify_checkpoint", must_not_open)
    for spec in ("yolov5n", shipped / "yolov5n.pt"):
        with pytest.raises(ModelError, match=r"bundled model .*yolov5n\.pt has been changed .* not loaded"):
            resolve_model(spec)
    assert not list(offline.iterdir())  # refused, not replaced by a download


def test_a_yolov5n_in_the_models_dir_comes_before_the_bundled_one(offline, yolov5n_pt):
    (offline / "yolov5n.pt").symlink_to(yolov5n_pt)
    src = resolve_model("yolov5n")
    assert src.origin is SourceOrigin.MODELS_DIR and src.path == yolov5n_pt.resolve()
    assert str(offline) in src.provenance


def test_the_shipped_checkpoint_is_the_official_one_and_loads():
    from core.runtime import load_legacy

    path = sources.BUNDLED_DIR / "yolov5n.pt"
    assert sha256_file(path) == sources.BUNDLED_MODELS["yolov5n"].sha256 == YOLOV5N_SHA256
    ckpt = load_legacy(path)
    assert len(ckpt.names) == 80 and ckpt.stride == 32


@pytest.fixture
def weights_server(tmp_path, yolov5n_pt):
    """A loopback HTTP server that serves the real yolov5n.pt like the GitHub release does."""
    root = tmp_path / "release"
    root.mkdir()
    (root / "yolov5n.pt").symlink_to(yolov5n_pt)
    (root / "yolov5s.pt").write_bytes(b"<html>not a checkpoint</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_official_name_is_downloaded_once_with_progress_and_then_reused(weights_server, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BUNDLED_DIR", tmp_path / "no-assets")  # an install without the bundled file
    monkeypatch.setenv(ENV_WEIGHTS_URL, weights_server)
    models = tmp_path / "weights"
    seen: list[float] = []
    src = resolve_model("yolov5n", models_directory=models, progress=lambda f, m: seen.append(f))
    assert src.kind is SourceKind.LEGACY_PT and src.path == (models / "yolov5n.pt").resolve()
    assert src.sha256 == YOLOV5N_SHA256 and src.origin is SourceOrigin.DOWNLOADED
    assert seen and seen[-1] == 1.0
    assert not [p for p in models.iterdir() if p.suffix == ".part"]
    monkeypatch.setenv(ENV_WEIGHTS_URL, UNREACHABLE)  # must not be needed
    again = resolve_model("yolov5n", models_directory=models)
    assert again.sha256 == src.sha256 and again.origin is SourceOrigin.MODELS_DIR


def test_a_download_that_is_not_a_checkpoint_is_refused_and_not_kept(weights_server, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_WEIGHTS_URL, weights_server)
    with pytest.raises(ModelError, match="not a usable YOLOv5 checkpoint"):
        resolve_model("yolov5s", models_directory=tmp_path)
    with pytest.raises(ModelError, match=r"could not download yolov5m\.pt"):
        resolve_model("yolov5m", models_directory=tmp_path)  # 404
    assert not list(tmp_path.glob("*.pt"))


def test_models_dir_from_environment_is_used_before_downloading(tmp_path, yolov5n_pt, monkeypatch):
    (tmp_path / "yolov5n.pt").symlink_to(yolov5n_pt)
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    monkeypatch.setenv(ENV_WEIGHTS_URL, UNREACHABLE)
    assert resolve_model("yolov5n").kind is SourceKind.LEGACY_PT


def test_unknown_model_names_and_types_are_explained(tmp_path):
    with pytest.raises(InputError, match="yolov5n, yolov5s"):
        resolve_model("yolov9z")
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(InputError, match=r"accepted: \.pt, \.pth, \.onnx"):
        resolve_model(tmp_path / "m.h5")


def test_ultralytics_checkpoint_needs_explicit_trust(ultralytics_pt):
    with pytest.raises(UnsafeModelError, match="only if you trust where it came from") as exc:
        resolve_model(ultralytics_pt)
    assert exc.value.setting is Setting.TRUST  # the CLI adds "pass --trust", a page its trust box
    assert resolve_model(ultralytics_pt, trust=True).kind is SourceKind.ULTRALYTICS_PT


@pytest.mark.slow
def test_trusted_ultralytics_checkpoint_exports_to_the_anchor_free_layout(ultralytics_pt, tmp_path):
    from core.model.store import ModelStore
    from core.runtime.processing import OutputLayout
    from core.variants import REFERENCE

    store = ModelStore(resolve_model(ultralytics_pt, trust=True), cache_root=tmp_path, imgsz=320)
    info = store.info()
    assert info.layout is OutputLayout.ANCHOR_FREE and info.num_classes == 80 and info.input_hw == (320, 320)
    import numpy as np

    with store.open_detector(REFERENCE) as det:
        raw = det.infer_raw(np.full((240, 320, 3), 90, np.uint8))
        assert raw.output.shape == (1, 84, 2100)
