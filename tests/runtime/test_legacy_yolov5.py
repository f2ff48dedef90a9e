import numpy as np
import pytest

from core.errors import ModelError, UnsafeModelError
from core.model.sources import SourceKind, classify_checkpoint
from core.runtime.legacy_yolov5 import load_legacy

from ..helpers import custom_class_checkpoint, hostile_checkpoint, random_bytes


def test_real_checkpoint_loads_with_its_names_and_stride(yolov5n_pt):
    ckpt = load_legacy(yolov5n_pt)
    assert len(ckpt.names) == 80 and ckpt.names[0] == "person" and ckpt.names[5] == "bus"
    assert ckpt.stride == 32
    assert classify_checkpoint(yolov5n_pt) is SourceKind.LEGACY_PT


@pytest.mark.parametrize("disguised", [False, True])
def test_a_pickle_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path, disguised):
    marker = tmp_path / "pwned"
    evil = hostile_checkpoint(tmp_path / "evil.pt", marker, disguise_as_yolov5=disguised)
    with pytest.raises(ModelError) as err:
        kind = classify_checkpoint(evil)  # reads the pickle's class names without unpickling
        assert kind is SourceKind.LEGACY_PT
        load_legacy(evil)
    if disguised:
        assert isinstance(err.value, UnsafeModelError) and "pathlib.Path" in str(err.value)
    assert not marker.exists()


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="not a readable PyTorch checkpoint"):
        classify_checkpoint(random_bytes(tmp_path / "noise.pt"))


def test_custom_class_count_checkpoint_keeps_its_own_names(yolov5n_pt, tmp_path):
    import torch

    path = custom_class_checkpoint(yolov5n_pt, tmp_path / "custom.pt", ["cat", "dog", "bird"])
    ckpt = load_legacy(path)
    assert ckpt.names == ["cat", "dog", "bird"]
    out = ckpt.model(torch.zeros(1, 3, 320, 320))
    assert tuple(out.shape) == (1, 3 * (40 * 40 + 20 * 20 + 10 * 10), 8)
    assert np.isfinite(out.detach().numpy()).all()
