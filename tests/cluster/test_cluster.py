"""Variants on a real Ray cluster: a head and a second node ("gpu-box") started on this machine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-cluster.txt)")

from core import cluster as cl  # noqa: E402
from core.cli import main  # noqa: E402
from core.cluster.remote import _Packed  # noqa: E402
from core.errors import CoreError, RuntimeUnavailableError  # noqa: E402
from core.runtime.backends import availability  # noqa: E402
from core.runtime.processing import PostParams  # noqa: E402
from core.variants import Runtime, Variant  # noqa: E402
from tests.browser.serve import NO_CHROMIUM, chromium, shot, streamlit_server, wait_idle  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_cluster():
    from ray.cluster_utils import Cluster

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{old}" if old else str(ROOT)  # the nodes' workers import core
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    box = c.add_node(num_cpus=1, resources={"gpu-box": 1})
    c.wait_for_nodes()
    connected = cl.connect(c.address)
    yield c, box, connected
    cl.disconnect()
    c.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def test_an_address_that_does_not_answer_is_one_line_within_seconds():
    t = time.perf_counter()
    with pytest.raises(RuntimeUnavailableError, match="does not answer"):
        cl.connect("127.0.0.1:9")  # discard port: nothing listens
    assert time.perf_counter() - t < cl.CONNECT_TIMEOUT_S + 1


def test_the_nodes_and_what_each_can_run(ray_cluster):
    _, box, connected = ray_cluster
    nodes = {n.name: n for n in connected.nodes()}
    assert "gpu-box" in nodes and len(nodes) == 2
    assert nodes["gpu-box"].node_id == box.node_id and not nodes["gpu-box"].head
    report = {n["name"]: n for n in connected.doctor()}
    ort = next(r for r in report["gpu-box"]["runtimes"] if r["runtime"] == "ort")
    assert ort["available"] and report["gpu-box"]["node_id"] == box.node_id
    assert report["gpu-box"]["pid"] != os.getpid()
    with pytest.raises(CoreError, match="no live cluster node is called 'nope'"):
        connected.node("nope")


def test_a_variant_on_the_second_node_runs_there_and_detects_the_same(ray_cluster, store, bus_image):
    _, box, _ = ray_cluster
    remote = store.open_detector(Variant.parse("gpu-box/ort:fp32"))
    try:
        assert remote.node_id == box.node_id and remote.pid != os.getpid()  # really in that node's process
        assert str(remote.variant) == "gpu-box/ort:fp32" and "on gpu-box" in remote.backend.description
        with store.open_detector(Variant.parse("ort:fp32")) as local:
            here = local.detect(bus_image)
        there = remote.detect(bus_image)
        assert there.detections.class_id.tolist() == here.detections.class_id.tolist()
        assert abs(there.detections.xyxy - here.detections.xyxy).max() < 1e-3
        assert there.timings.inference > 0 and len(remote.transfer_ms) == 1  # transfer kept apart
        raw = remote.infer_raw(bus_image, 0.25)
        assert len(remote.postprocess(raw, PostParams())[0]) == 4
    finally:
        remote.close()


def test_a_frame_rides_in_the_call_for_one_variant_and_is_shared_by_two_on_a_node(ray_cluster, store, bus_image):
    _, _, connected = ray_cluster
    node = connected.node("gpu-box")
    small = np.ascontiguousarray(bus_image[:480, :640])
    first = store.open_detector(Variant.parse("gpu-box/ort:fp32"))
    try:
        (packed,) = connected.frames([small], node)  # the only reader: inside the call, as bytes
        assert np.array_equal(packed.array(), small)
        second = store.open_detector(Variant.parse("gpu-box/ort:fp32"))
        try:
            ref = connected.frames([small], node)  # two readers: one object-store copy for both
            assert isinstance(ref, ray.ObjectRef) and connected.frames([small], node) is ref
            other = small.copy()
            assert connected.frames([other], node) is not ref  # a new frame, never the last one's copy
            a, b = first.detect(small), second.detect(small)
            assert a.detections.class_id.tolist() == b.detections.class_id.tolist()
        finally:
            second.close()
        assert isinstance(connected.frames([small], node)[0], _Packed)  # one reader again
        with store.open_detector(Variant.parse("ort:fp32")) as local:
            here = local.detect(small)
        assert first.detect(small).detections.class_id.tolist() == here.detections.class_id.tolist()
    finally:
        first.close()


def test_cli_bench_runs_a_remote_variant_beside_a_local_one(ray_cluster, store, capsys):
    c, _, _ = ray_cluster
    code = main(["bench", "--model", str(store.source.path), "--cache-dir", str(store.cache_root), "--cluster",
                 c.address, "--variants", "ort:fp32,gpu-box/ort:fp32", "--warmup", "1", "--iterations", "5",
                 "--json"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    import json

    rows = {r["variant"]: r for r in json.loads(out.out)["variants"]}
    assert set(rows) == {"ort:fp32", "gpu-box/ort:fp32"}
    remote = rows["gpu-box/ort:fp32"]
    assert "on gpu-box" in remote["runs_on"] and remote["node"]["name"] == "gpu-box"
    assert 0 <= remote["transfer_ms"]["p50"] < remote["latency_ms"]["p50"]  # measured apart, never added
    assert "transfer_ms" not in rows["ort:fp32"]


def test_cli_detect_says_where_a_remote_variant_ran_and_drift_refuses_a_node(ray_cluster, store, bus_jpg, capsys):
    c, box, _ = ray_cluster
    common = ["--model", str(store.source.path), "--cache-dir", str(store.cache_root), "--cluster", c.address]
    assert main(["detect", *common, "--variant", "gpu-box/ort:fp32", str(bus_jpg)]) == 0
    text = capsys.readouterr().out
    assert "gpu-box/ort:fp32 runs on gpu-box" in text and "the times below are the node's" in text
    assert "gpu-box/ort:fp32: transfer to and from its node p50" in text and ": 4 objects" in text
    assert main(["detect", *common, "--variant", "gpu-box/ort:fp32", "--json", str(bus_jpg)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["node"]["node_id"] == box.node_id and got["transfer_ms"]["p50"] >= 0
    code = main(["drift", *common, "--calib", str(store.calib_dir), "--variant", "gpu-box/ort:int8"])
    assert code != 0 and "drop the node: --variant ort:int8" in capsys.readouterr().err


def test_sharded_eval_equals_one_process_to_the_last_digit(ray_cluster, store, val_dir, detectors):
    from core.data.dataset import load_dataset
    from core.measure.evaluation import evaluate, summarize

    _, _, connected = ray_cluster
    dataset = load_dataset(val_dir)
    fp32, int8 = detectors["ort:fp32"], detectors["ort:int8"]
    local = evaluate([fp32, int8], dataset, reference=fp32, resamples=200)
    variants = [Variant.parse("ort:fp32"), Variant.parse("ort:int8")]
    seen = []
    got, shown, unreadable = cl.sharded_collect(connected, store, variants, dataset.items, 2, PostParams(),
                                                lambda f, m: seen.append(m))  # fmt: skip
    sharded = summarize(got, got[0], shown, resamples=200)
    assert len(seen) == 8 and not unreadable  # progress from every one of the 8 chunks of 16 images
    for a, b in zip(local, sharded, strict=True):
        assert a.variant == b.variant and a.accuracy.images == b.accuracy.images == 128
        assert a.accuracy.map50_95 == b.accuracy.map50_95 and a.accuracy.map50 == b.accuracy.map50
        assert [c.ap50_95 for c in a.accuracy.per_class] == [c.ap50_95 for c in b.accuracy.per_class]
    assert local[1].delta.map50_95.value == sharded[1].delta.map50_95.value
    assert local[1].agreement == sharded[1].agreement


def test_auto_finds_the_cluster_running_on_this_machine(ray_cluster):
    """What a user types after `ray start --head` here: --cluster auto, in a process of its own."""
    _, box, _ = ray_cluster
    env = dict(os.environ, YOLOLAB_CLUSTER="")
    out = subprocess.run([sys.executable, "-m", "core", "cluster", "--cluster", "auto", "--json"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    nodes = {n["handle"]: n for n in got["nodes"]}
    assert got["address"] == "auto" and nodes["gpu-box"]["node_id"] == box.node_id
    assert [n["here"] for n in got["nodes"]].count(True) == 1  # the node its driver joined, marked


def test_a_node_is_named_by_its_resource_else_by_its_id_when_names_clash():
    mk = lambda i, ip, names: cl.Node(i * 56, ip, names, 1, 1, 0, False)  # noqa: E731
    nodes = [mk("a", "10.0.0.1", ("gpu-box",)), mk("b", "10.0.0.2", ()), mk("c", "10.0.0.2", ()),
             mk("d", "10.0.0.3", ("GPU Box",))]  # fmt: skip
    handles = cl.Cluster.handles(nodes)
    assert handles == {"a" * 56: "gpu-box", "b" * 56: "b" * 16, "c" * 56: "c" * 16, "d" * 56: "d" * 16}
    for h in handles.values():
        assert Variant.parse(f"{h}/ort:fp32").node == h  # every handle places a variant


def test_cli_sharded_eval_gives_the_local_map_and_says_its_latency_is_no_machines(ray_cluster, store, val_dir,
                                                                                   capsys):  # fmt: skip
    c, _, _ = ray_cluster
    common = ["eval", "--model", str(store.source.path), "--cache-dir", str(store.cache_root), "--data",
              str(val_dir), "--max-images", "16", "--variants", "ort:fp32", "--json"]  # fmt: skip
    assert main(common) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*common, "--cluster", c.address, "--shards", "2"]) == 0
    sharded = json.loads(capsys.readouterr().out)
    assert sharded["variants"][0]["map50_95"] == local["variants"][0]["map50_95"]
    assert "no machine's latency" in sharded["latency_source"] and "latency_source" not in local


def test_cli_cluster_lists_every_node_with_its_runtimes(ray_cluster, capsys):
    c, box, _ = ray_cluster
    assert main(["cluster", "--cluster", c.address, "--json"]) == 0
    import json

    nodes = {n["name"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes["gpu-box"]["node_id"] == box.node_id
    assert {r["runtime"] for r in nodes["gpu-box"]["runtimes"]} >= {"ort", "trt"}
    assert main(["cluster", "--cluster", c.address]) == 0
    text = capsys.readouterr().out
    assert "gpu-box" in text and "ort" in text and "2 node(s)" in text


def test_compare_images_page_runs_a_variant_on_a_node_beside_the_local_ones(ray_cluster, app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    c, _, _ = ray_cluster
    monkeypatch.setenv("YOLOLAB_CLUSTER", c.address)
    at = AppTest.from_file(str(ROOT / "pages" / "compare_images.py"), default_timeout=600)
    at.run()
    nodes = [e.label for e in at.expander if e.label.startswith("On node ")]
    assert len(nodes) == 1 and nodes[0].startswith("On node gpu-box (")  # the head is this process's node
    trt = at.checkbox(key="img:gpu-box/trt:fp16")
    if availability(Runtime.TRT).ok:  # the node is this machine: what its doctor says, the box shows
        assert not trt.disabled
    else:
        assert trt.disabled and "on gpu-box" in (trt.help or ""), trt.help
    at.checkbox(key="img:gpu-box/ort:fp32").check()
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(dict.fromkeys(table["variant"])) == ["ort:fp32", "ort:int8", "gpu-box/ort:fp32"]
    per = table.groupby("variant")["objects"].sum()
    assert per["gpu-box/ort:fp32"] == per["ort:fp32"]  # the same detections on the node
    words = [x.value for x in at.caption if "transfer to and from its node" in x.value]
    assert len(words) == 1 and words[0].startswith("gpu-box/ort:fp32: ")  # apart from its latency


def test_benchmark_page_shows_a_remote_variants_transfer_apart_from_its_latency(ray_cluster, app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    c, _, _ = ray_cluster
    monkeypatch.setenv("YOLOLAB_CLUSTER", c.address)
    at = AppTest.from_file(str(ROOT / "pages" / "benchmark.py"), default_timeout=600)
    at.run()
    at.checkbox(key="bench:gpu-box/ort:fp32").check()
    at.number_input(key="bench:warmup").set_value(1)
    at.number_input(key="bench:iters").set_value(10)
    at.button[0].click()
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    words = [x.value for x in at.caption if "transfer to and from its node" in x.value]
    assert len(words) == 1 and words[0].startswith("gpu-box/ort:fp32: ") and "not in its latency" in words[0]
    assert ("text", words[0]) in at.session_state["report"]["benchmark"].items  # the report says it too


def test_accuracy_page_evaluates_a_variant_on_a_node_to_the_local_map(ray_cluster, app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.helpers import results_table

    c, _, _ = ray_cluster
    monkeypatch.setenv("YOLOLAB_CLUSTER", c.address)
    at = AppTest.from_file(str(ROOT / "pages" / "accuracy.py"), default_timeout=600)
    at.run()
    for v in ("ort:fp16", "ort:int8"):
        at.checkbox(key=f"acc:{v}").uncheck()
    at.checkbox(key="acc:gpu-box/ort:fp32").check()
    at.slider(key="acc:max").set_value(16)
    at.run()
    next(b for b in at.button if b.label == "Evaluate").click()
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    table = results_table(at, "mAP50-95").set_index("variant")
    assert list(table.index) == ["ort:fp32", "gpu-box/ort:fp32"]
    assert table.loc["gpu-box/ort:fp32", "mAP50-95"] == table.loc["ort:fp32", "mAP50-95"]  # the same file there


def test_a_video_job_keeps_a_remote_variants_transfer_per_frame(ray_cluster, store, videos_dir, tmp_path):
    from core.video import VideoJob

    remote = store.open_detector(Variant.parse("gpu-box/ort:fp32"))
    try:
        remote.detect(np.zeros((64, 64, 3), np.uint8))  # a call before the job: not its figure
        job = VideoJob(videos_dir / "car-detection.mp4", "car", [remote], PostParams(), tmp_path / "o.mp4", 5)
        job.thread.join(120)
        assert not job.error and job.result.frames == 5
        (samples,) = job.transfer_ms().values()
        assert len(samples) == 5 and all(s >= 0 for s in samples)
    finally:
        remote.close()


@pytest.mark.browser
@NO_CHROMIUM
def test_in_the_browser_a_variant_ticked_on_a_node_runs_there(ray_cluster, app_env, tmp_path):
    """The dashboard as a user starts it with YOLOLAB_CLUSTER set: the node's grid, its variant's results
    beside the local ones with its transfer apart, the Models page's table of nodes."""
    c, _, _ = ray_cluster
    env = {k: os.environ[k] for k in ("YOLOLAB_MODEL", "YOLOLAB_CALIB_DIR", "YOLOLAB_EVAL_DATA",
                                      "YOLOLAB_SAMPLE_VIDEOS", "YOLOLAB_CACHE_DIR", "PYTHONPATH")}  # fmt: skip
    env["YOLOLAB_CLUSTER"] = c.address
    with streamlit_server(env, tmp_path) as url, chromium() as browser:
        page = browser.new_context(viewport={"width": 1600, "height": 1100}).new_page()
        page.goto(url)
        page.get_by_text("Showing the sample images").wait_for(timeout=300_000)
        wait_idle(page)
        page.get_by_text("On node gpu-box (").click()
        page.get_by_role("checkbox", name="gpu-box/ort:fp32", exact=True).check(force=True)
        transfer = page.get_by_text(re.compile(r"^gpu-box/ort:fp32: transfer to and from its node p50"))
        transfer.wait_for(timeout=300_000)
        page.get_by_text(re.compile(r"^gpu-box/ort:fp32 — ")).first.wait_for(timeout=60_000)  # its headline
        wait_idle(page)
        assert "Traceback" not in page.content()
        page.get_by_text(re.compile(r"^gpu-box/ort:fp32 — ")).first.scroll_into_view_if_needed()
        shot(page, "cluster_compare_images")
        transfer.scroll_into_view_if_needed()
        shot(page, "cluster_compare_images_transfer")
        page.locator("[data-testid='stSidebar']").get_by_text("Models").click()
        page.get_by_role("heading", name="Cluster").wait_for(timeout=120_000)
        table = page.locator("[data-testid='stDataFrame']").filter(has_text="gpu-box")
        table.wait_for(timeout=120_000)
        wait_idle(page)
        table.scroll_into_view_if_needed()
        shot(page, "cluster_models")
