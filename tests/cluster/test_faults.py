"""A cluster node that goes away mid-run: the variant on it is named as lost, the others go on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-cluster.txt)")

from core import cluster as cl  # noqa: E402
from core.processing import PostParams  # noqa: E402
from core.variants import Variant  # noqa: E402
from core.video import process_video  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_killing_the_node_mid_video_loses_only_its_variant(store, videos_dir, tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    doomed = c.add_node(num_cpus=1, resources={"doomed": 1})
    c.wait_for_nodes()
    try:
        cl.connect(c.address)
        local = store.open_detector(Variant.parse("ort:fp32"))
        remote = store.open_detector(Variant.parse("doomed/ort:fp32"))
        killed = []

        def on_frame(update):
            if update.index == 4 and not killed:
                c.remove_node(doomed, allow_graceful=False)
                killed.append(update.index)

        run = process_video(videos_dir / "car-detection.mp4", [local, remote], PostParams(), tmp_path / "out.mp4",
                            max_frames=30, on_frame=on_frame)  # fmt: skip
        local.close()
        remote.close()
    finally:
        cl.disconnect()
        c.shutdown()
    assert killed and run.frames == 30  # the local variant went on to the end
    (why,) = run.lost.values()
    assert "doomed/ort:fp32: lost at frame" in why and "its figures cover the frames before" in why
    timings = {v: len(t) for v, t in run.timings.items()}
    assert timings["ort:fp32"] == 30 and 5 <= timings["doomed/ort:fp32"] < 30  # what was measured is kept
    assert run.output is not None and run.output.stat().st_size > 0
    assert why in run.table().notes and run.to_dict()["lost"] == run.lost
    assert "doomed/ort:fp32" in run.csv_text()
    assert os.environ.get("PYTHONPATH") == str(ROOT)
