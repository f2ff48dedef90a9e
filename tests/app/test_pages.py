"""Every page through Streamlit's AppTest: load with no input, then do what a user does and check what they see."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ..helpers import results_table

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["compare_images", "compare_video", "benchmark", "accuracy", "precision", "models", "report"]
TIMEOUT = 600


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)


def run_benchmark(warmup: int, iterations: int, batch: int = 1) -> AppTest:
    """The Benchmark page, run once with these settings."""
    at = page("benchmark")
    at.run()
    at.number_input(key="bench:warmup").set_value(warmup)
    at.number_input(key="bench:iters").set_value(iterations)
    at.number_input(key="bench:batch").set_value(batch)
    at.button[0].click()
    at.run()
    return at


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_loads_without_input_and_without_errors(app_env, name):
    at = page(name)
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("name", ["compare_images", "benchmark", "accuracy", "models"])
def test_a_broken_model_is_an_error_message_not_a_crash(monkeypatch, tmp_path, name):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"definitely not onnx")
    monkeypatch.setenv("YOLOLAB_MODEL", str(bad))
    at = page(name)
    at.run()
    assert not at.exception
    assert any("not a readable ONNX model" in e.value for e in at.error)


def test_app_entry_point_runs_the_default_page(app_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Compare images"
    assert "yolov5n.pt" in at.sidebar.markdown[0].value


def test_compare_images_upload_two_variants_diff_and_instant_thresholds(app_env, bus_jpg):
    at = page("compare_images")
    at.run()
    at.file_uploader[0].set_value(
        [("bus.jpg", bus_jpg.read_bytes(), "image/jpeg"), ("notes.jpg", b"hello", "image/jpeg")]
    )
    at.run()
    assert not at.exception
    assert any("notes.jpg: not an image" in w.value for w in at.warning)  # the bad file is named...
    m = dict(metrics(at)[:2])
    assert m["objects"] == "4"  # ...and bus.jpg still gets its 4 objects
    assert len(at.image) >= 3  # fp32, int8, and the diff image
    labels = [label for label, _ in metrics(at)]
    assert {"matched", "missed", "extra", "|Δconf|"} <= set(labels)
    table = at.dataframe[0].value
    assert list(table["variant"]) == ["ort:fp32", "ort:int8"] and (table["objects"] >= 3).all()

    raw_entries = len(at.session_state["img:raw"])
    at.slider(key="img:conf").set_value(0.7)
    at.run()
    assert len(at.session_state["img:raw"]) == raw_entries  # no new inference, only post-processing
    assert int(dict(metrics(at)[:2])["objects"]) < 4


def test_benchmark_runs_and_reports_percentiles(app_env):
    at = run_benchmark(warmup=1, iterations=5)
    assert not at.exception
    table = results_table(at, "p90 ms")
    assert list(table["variant"]) == ["ort:fp32", "ort:fp16", "ort:int8"]
    assert (table["p50 ms"] > 0).all() and (table["p90 ms"] >= table["p50 ms"]).all()
    assert len(at.get("plotly_chart")) == 3


def test_benchmark_profiles_where_the_time_goes_as_the_cli_does(app_env):
    at = run_benchmark(warmup=1, iterations=5)
    next(b for b in at.button if b.label == "Profile these variants").click()
    at.run()
    assert not at.exception
    run = at.session_state["bench:profile"]
    assert [v.variant for v in run.variants] == ["ort:fp32", "ort:fp16", "ort:int8"]
    table = next(d.value for d in at.dataframe if "ort:int8 ms" in d.value.columns)
    assert (table["block"].str.startswith("model.")).sum() >= 20
    int8 = run.variants[2]
    sums = table.loc[table["block"] == "blocks, sum", "ort:int8 ms"].item()
    assert sums == pytest.approx(int8.blocks_ms, abs=0.01) and int8.split()["quantize"] > 0  # shown rounded
    captions = [c.value for c in at.caption]
    assert any(c.startswith("ort:int8 against ort:fp32: ") for c in captions)
    assert len(at.get("plotly_chart")) == 5  # the benchmark's three and the profile's two
    at.run()  # a rerun keeps it
    assert at.session_state["bench:profile"] is run
    cards = next(d.value for d in at.dataframe if "memory MB" in d.value.columns)  # the decision cards take it
    memory = {f.variant: f.peak_mb for f in run.footprints}
    assert list(cards["memory MB"]) == pytest.approx([memory[v] for v in cards["variant"]], abs=0.51)  # shown as MB


def test_benchmark_throughput_mode_shows_its_batch_size(app_env):
    at = run_benchmark(warmup=0, iterations=5, batch=3)
    assert not at.exception
    table = results_table(at, "batch")
    assert (table["batch"] == 3).all()
    # latency is per call of 3 images, FPS per image at the median: 3 images every p50 ms
    assert ((table["FPS"] - 3000 / table["p50 ms"]).abs() < 0.05 * table["FPS"]).all()
    assert any("batch size 3" in s.value for s in at.subheader)


def test_accuracy_on_the_default_set_gives_map_and_a_pareto_front(app_env):
    at = page("accuracy")
    at.run()
    at.slider(key="acc:max").set_value(16)
    at.button[0].click()
    at.run()
    assert not at.exception
    table = results_table(at, "mAP50-95")
    assert list(table["variant"]) == ["ort:fp32", "ort:fp16", "ort:int8"]
    assert (table["mAP50-95"] > 0.1).all() and table["Pareto"].any()
    assert table.loc[table["variant"] == "ort:fp16", "matched"].item() > 0


def test_models_page_lists_artefacts_and_why_gpu_runtimes_are_off(app_env):
    at = page("models")
    at.run()
    assert not at.exception
    artefacts, runtimes = at.dataframe[0].value, at.dataframe[1].value
    assert "onnx-fp32" in set(artefacts["artefact"])
    assert artefacts.loc[artefacts["artefact"] == "onnx-fp32", "built"].item() == "yes"
    trt = runtimes[runtimes["runtime"] == "TensorRT"].iloc[0]
    assert trt["available"] == "no" and trt["why not"]
    next(b for b in at.button if b.label.startswith("Clear this model's cache")).click()
    at.run()  # asks first: nothing is deleted by the one click
    assert not at.exception
    assert at.dataframe[0].value.loc[lambda t: t["artefact"] == "onnx-fp32", "built"].item() == "yes"


def test_ultralytics_upload_without_trust_is_refused_with_the_reason(app_env, tmp_path):
    import os

    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    pt = tmp_path / "v8n.pt"
    YOLO("yolov8n.yaml").save(str(pt))
    at = page("models")
    at.run()
    at.radio(key="models:kind").set_value("Upload .pt / .onnx")
    at.run()
    at.file_uploader(key="models:upload").set_value(("v8n.pt", pt.read_bytes(), "application/octet-stream"))
    at.run()
    at.button[0].click()
    at.run()
    assert not at.exception
    assert any("--trust" in e.value or "trust" in e.value for e in at.error)
    assert "v8n" not in at.session_state["model_choice"].spec  # the active model did not change


def test_report_collects_the_session_results_into_one_html(app_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()  # the default page compares the sample images
    assert not at.exception
    at.switch_page("pages/report.py")
    at.run()
    assert not at.exception
    assert any("Compare images" in md.value for md in at.markdown)
    assert at.get("download_button")


def test_compare_video_processes_a_clip_and_offers_a_playable_video_and_csv(app_env):
    at = page("compare_video")
    at.run()
    at.selectbox[0].set_value("street_people_car_tokyo_360p.mp4")
    at.number_input(key="vid:max").set_value(8)
    at.button[0].click()
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.get("video"), "the result video is shown"
    table = at.dataframe[0].value
    assert list(table["variant"]) == ["ort:fp32", "ort:int8"] and (table["frames"] == 8).all()
    assert (table["p50 ms"] > 0).all()
    labels = [b.label for b in at.get("download_button")]
    assert any("MP4" in lb for lb in labels) and any("CSV" in lb for lb in labels)
    made = [c.value for c in at.caption if c.value.startswith("Made with")]
    assert made and "ort:fp32, ort:int8" in made[0] and "conf 0.25" in made[0] and "first 8 frames" in made[0]

    # back on the page after another (its widgets forgotten, the results kept): the same clip is chosen,
    # not the first sample again, and the result plays looped, or slowed down
    back = page("compare_video")
    for key in ("vid:job", "vid:clip"):
        back.session_state[key] = at.session_state[key]
    back.run()
    assert not back.exception
    assert back.selectbox[0].value == "street_people_car_tokyo_360p.mp4" != back.selectbox[0].options[0]
    assert back.toggle(key="vid:loop").value
    back.toggle(key="vid:slow").set_value(True)
    back.run()
    assert not back.exception and back.get("video")
    output = at.session_state["vid:job"].result.output
    assert output.with_name(f"{output.stem}-slow.mp4").is_file()


def test_video_job_stop_keeps_what_was_processed(store, detectors, videos_dir, tmp_path):
    import time

    import av

    from core.runtime.processing import PostParams
    from core.video import VideoJob

    clip = videos_dir / "street_people_car_tokyo_360p.mp4"
    job = VideoJob(clip, clip.name, [detectors["ort:fp32"]], PostParams(), tmp_path / "out.mp4", None)
    while job.running and len(job.latency["ort:fp32"]) < 5:
        time.sleep(0.05)
    job.stop()
    job.thread.join(120)
    run = job.result
    assert not job.error and run.stopped and 5 <= run.frames < 319
    with av.open(str(run.output)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video=0)) == run.frames


def test_benchmark_then_accuracy_give_one_decision_card_and_the_report_leads_with_it(app_env):
    at = run_benchmark(warmup=1, iterations=10)
    assert not at.exception
    assert any(s.value == "Decision" for s in at.subheader)
    headlines = [m.value for m in at.markdown if m.value.startswith("**ort:")]
    assert headlines and all("ort:fp32" in h for h in headlines)  # vs the first variant
    bench = at.session_state["bench:results"]

    at = page("accuracy")  # the same session: what the benchmark left in it
    at.session_state["bench:results"] = bench
    at.run()
    at.slider(key="acc:max").set_value(16)
    next(b for b in at.button if b.label == "Evaluate").click()
    at.run()
    assert not at.exception
    int8 = next(m.value for m in at.markdown if m.value.startswith("**ort:int8"))
    assert "mAP50-95 points" in int8 and "16 images" in int8 and "of ort:fp32's detections" in int8
    assert "faster than ort:fp32" in int8 or "slower than ort:fp32" in int8 or "no measurable speed" in int8
    accuracy, sections = at.session_state["acc:results"], at.session_state["report"]

    at = page("report")
    at.session_state["bench:results"], at.session_state["acc:results"] = bench, accuracy
    at.session_state["report"] = sections
    at.run()
    assert not at.exception
    assert at.markdown[0].value.startswith("Included: Decision, ")


def test_accuracy_lists_the_images_that_differ_most_and_opens_them_in_compare_images(app_env):
    at = page("accuracy")
    at.run()
    at.slider(key="acc:max").set_value(16)
    next(b for b in at.button if b.label == "Evaluate").click()
    at.run()
    assert not at.exception
    at.selectbox(key="acc:perclass").set_value("ort:int8")
    at.run()
    worst = results_table(at, "image", "missed", "extra")
    assert len(worst) >= 1 and ((worst["missed"] + worst["extra"]) > 0).all()
    assert list(worst["missed"] + worst["extra"]) == sorted(worst["missed"] + worst["extra"], reverse=True)
    preset_button = next(b for b in at.button if b.label.startswith("Open these"))
    preset_button.click()
    at.run()
    paths, what, variants = at.session_state["img:preset"]
    assert len(paths) == len(worst) and "differs most from ort:fp32" in what and variants == ["ort:fp32", "ort:int8"]

    compare = page("compare_images")
    compare.session_state["img:preset"] = (paths, what, variants)
    compare.run()
    assert not compare.exception
    assert any(what in c.value for c in compare.caption)
    table = results_table(compare, "image")
    assert set(table["image"]) == {Path(p).name for p in paths}


def test_a_build_the_run_will_need_is_announced_before_it(app_env):
    at = page("benchmark")
    at.run()
    at.selectbox(key="bench:imgsz").set_value(512)
    at.run()
    assert not at.exception
    assert any(
        "ort:int8 at 512 px is not built yet: the first run calibrates INT8 on 128 images of coco128" in i.value
        for i in at.info
    ), [i.value for i in at.info]


def test_the_video_page_always_offers_the_demo_clip(app_env):
    at = page("compare_video")
    at.run()
    assert not at.exception
    assert "demo-pan.mp4 (made from the sample pictures)" in at.selectbox[0].options


def test_precision_explorer_runs_saves_a_recipe_and_compare_images_offers_it(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("YOLOLAB_CACHE_DIR", str(tmp_path))  # the saved recipe stays out of the shared cache
    at = page("precision")
    at.run()
    assert not at.exception and not at.error
    at.slider(key="prec:max").set_value(16)
    at.slider(key="prec:drift").set_value(1)
    at.number_input(key="prec:blocks").set_value(1)
    at.multiselect(key="prec:cals").set_value([])
    next(b for b in at.button if b.label == "Explore").click()
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Chosen recipe" in [h.value for h in at.subheader]
    assert len(at.get("plotly_chart")) == 3  # candidates' front, sensitivity, drift by block
    candidates = results_table(at, "candidate", "p50 ms")
    assert candidates["candidate"].iloc[0] == "default" and candidates["p50 ms"].gt(0).all()
    assert any(m.label == "Δ mAP50-95, labelled" for m in at.metric)
    next(b for b in at.button if b.label == "Use this recipe").click()
    at.run()
    assert not at.exception
    saved = at.session_state["prec:saved"]
    assert saved.startswith("ort:int8@auto-cpu-drop0.3")
    assert any(saved in s.value for s in at.success)

    compare = page("compare_images")
    compare.run()
    assert not compare.exception
    assert saved in [c.label for c in compare.checkbox]


def test_models_page_says_in_one_line_when_the_cluster_does_not_answer(app_env, monkeypatch):
    monkeypatch.setenv("YOLOLAB_CLUSTER", "127.0.0.1:9")  # nothing listens there
    at = page("models")
    at.run()
    assert not at.exception
    assert any("does not answer" in w.value and "run as usual" in w.value for w in at.warning)
    assert "Runtimes on this machine" in [h.value for h in at.subheader]  # the rest of the page is there


def test_the_build_announcement_is_gone_once_the_run_built_it(app_env, monkeypatch, tmp_path):
    """Compare images builds and shows results in one run: no "not built yet" beside those results."""
    monkeypatch.setenv("YOLOLAB_CACHE_DIR", str(tmp_path))  # nothing built yet
    at = page("compare_images")
    at.session_state["img:ort:int8"] = False  # ort:fp32 and ort:fp16: seconds to convert, no calibration
    at.session_state["img:ort:fp16"] = True
    at.run()
    assert not at.exception
    said = [x.value for x in [*at.caption, *at.info]]
    assert not any("not built yet" in x for x in said), said
    assert set(results_table(at, "objects")["variant"]) == {"ort:fp32", "ort:fp16"}


def test_a_benchmark_goes_on_while_the_user_is_on_another_page_and_is_there_on_return(app_env, monkeypatch):
    """The run is a job in the session: leaving the page (here: its polling loop cut short, as a page switch
    does in a browser) leaves it running; back on the page, it shows the job and then its results."""
    import streamlit as st

    from ui import jobs

    follow = jobs.follow

    def leave_at_once(job, box, label, key):  # what a click on another page does to the page's loop
        with box:
            st.button("Stop", key=f"{key}:stop")
        st.stop()

    monkeypatch.setattr(jobs, "follow", leave_at_once)
    at = page("benchmark")
    at.run()
    at.number_input(key="bench:warmup").set_value(1)
    at.number_input(key="bench:iters").set_value(60)
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    job = at.session_state["bench:job"]
    assert job.running and "bench:results" not in at.session_state
    assert at.button[0].label == "Run benchmark" and at.button[0].disabled  # settings locked...
    assert at.number_input(key="bench:iters").disabled
    assert any("Settings are locked while the benchmark runs" in c.value for c in at.caption)
    assert [b.label for b in at.button] == ["Run benchmark", "Stop"]  # ...and a Stop button

    other = page("models")  # another page of the same session: the job is in its state, nobody watches it
    other.session_state["bench:job"] = job
    other.run()
    assert not other.exception and job.running

    monkeypatch.setattr(jobs, "follow", follow)
    back = page("benchmark")  # back on the page: its widgets forgotten, its state kept
    back.session_state["bench:job"] = job
    back.run()  # follows the running job to its end, then shows its results
    assert not back.exception and not back.error
    assert back.session_state["bench:results"] is job.result and "bench:job" not in back.session_state
    table = results_table(back, "p90 ms")
    assert list(table["variant"]) == ["ort:fp32", "ort:fp16", "ort:int8"] and (table["p50 ms"] > 0).all()
    labels = [b.label for b in back.button]
    assert labels[0] == "Run benchmark" and "Profile these variants" in labels and "Stop" not in labels  # no Stop
    assert not any(b.disabled for b in back.button)


def test_a_stopped_benchmark_keeps_nothing_and_says_so(app_env):
    from core.measure import BenchJob

    at = page("benchmark")
    at.run()
    job = BenchJob([], None, system={}, model="m", imgsz=640, image_name="x", warmup=0, iterations=1)
    job.wait(10)
    job.result, job.error, job.stopped = None, "", True  # what a Stop leaves
    at.session_state["bench:job"] = job
    at.run()
    assert not at.exception
    assert any("Stopped: nothing of that run is kept" in i.value for i in at.info)
    assert "bench:job" not in at.session_state and "bench:results" not in at.session_state


def test_the_sidebar_s_input_shape_applies_to_every_page(app_env, bus_jpg):
    """Rect in the sidebar: the next run of any page runs it (bus.jpg at 640x480 finds detect.py's five objects),
    and the results say which shape ran."""
    from dataclasses import replace

    from ui.model import default_choice

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    assert "640px, square" in app.sidebar.markdown[0].value
    app.sidebar.radio(key="sidebar:shape").set_value("rect")
    app.run()
    assert not app.exception
    assert "640px, rect" in app.sidebar.markdown[0].value
    assert app.session_state["model_choice"].shape == "rect"

    at = page("compare_images")
    at.session_state["model_choice"] = replace(default_choice(), shape="rect")
    at.run()
    at.file_uploader[0].set_value([("bus.jpg", bus_jpg.read_bytes(), "image/jpeg")])
    at.run()
    assert not at.exception
    assert dict(metrics(at)[:2])["objects"] == "5"
