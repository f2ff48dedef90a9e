"""A cluster node that goes away mid-run: the variant on it is named as lost, the others go on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-cluster.txt)")

from core import cluster as cl  # noqa: E402
from core.runtime.processing import PostParams  # noqa: E402
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


def _cluster(head_cpus: int, monkeypatch):
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus})
    node = c.add_node(num_cpus=1, resources={"doomed": 1})
    c.wait_for_nodes()
    return c, node


def test_a_shard_whose_node_dies_is_retried_elsewhere_and_the_result_is_unchanged(store, val_dir, detectors,
                                                                                  monkeypatch):  # fmt: skip
    from core.data.dataset import load_dataset
    from core.measure.evaluation import evaluate, summarize

    dataset = load_dataset(val_dir, 64)
    local = evaluate([detectors["ort:fp32"]], dataset, reference=detectors["ort:fp32"], resamples=0)[0]
    c, node = _cluster(1, monkeypatch)
    killed = []

    def progress(fraction, message):
        if not killed:  # after the first chunk: the second node goes, with whatever it was running
            c.remove_node(node, allow_graceful=False)
            killed.append(message)

    try:
        connected = cl.connect(c.address)
        got, shown, _ = cl.sharded_collect(connected, store, [Variant.parse("ort:fp32")], dataset.items, 2,
                                           PostParams(), progress)  # fmt: skip
    finally:
        cl.disconnect()
        c.shutdown()
    sharded = summarize(got, got[0], shown, resamples=0)[0]
    assert killed and sharded.accuracy.images == 64
    assert sharded.accuracy.map50_95 == local.accuracy.map50_95 and sharded.accuracy.map50 == local.accuracy.map50


def test_no_node_left_to_take_a_shard_is_an_error_not_a_hang(store, val_dir, monkeypatch):
    from core.data.dataset import load_dataset
    from core.errors import RuntimeUnavailableError

    dataset = load_dataset(val_dir, 48)
    c, node = _cluster(0, monkeypatch)  # the head takes no work: only the second node can

    def progress(fraction, message):
        c.remove_node(node, allow_graceful=False)

    t = time.perf_counter()
    try:
        connected = cl.connect(c.address)
        with pytest.raises(RuntimeUnavailableError, match=r"shard|no shard finished"):
            cl.sharded_collect(connected, store, [Variant.parse("ort:fp32")], dataset.items, 1, PostParams(),
                               progress, stall_s=15)  # fmt: skip
    finally:
        cl.disconnect()
        c.shutdown()
    assert time.perf_counter() - t < 120
