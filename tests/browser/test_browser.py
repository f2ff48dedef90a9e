"""The real thing: `streamlit run` on loopback, driven by Debian's Chromium through Playwright.

Few and meaningful: upload a short clip and watch it process into a video the browser plays; upload
bus.jpg and compare two variants; four sessions at once, one processing a video while three compare
their own images. Screenshots land in artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.serve import NO_CHROMIUM, chromium, shot, streamlit_server, wait_idle

pytestmark = [pytest.mark.browser, NO_CHROMIUM]


@pytest.fixture(scope="module")
def server(yolov5n_pt, calib_dir, val_dir, videos_dir, tmp_path_factory) -> Iterator[str]:
    env = {
        "YOLOLAB_MODEL": str(yolov5n_pt),
        "YOLOLAB_CALIB_DIR": str(calib_dir),
        "YOLOLAB_EVAL_DATA": str(val_dir),
        "YOLOLAB_SAMPLE_VIDEOS": str(videos_dir),
        "YOLOLAB_CACHE_DIR": str(tmp_path_factory.mktemp("browser-cache")),
    }
    with streamlit_server(env, tmp_path_factory.mktemp("log")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1100})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def assert_app_sidebar(page) -> None:
    """The app's own navigation and sidebar, not Streamlit's listing of the files in pages/."""
    side = page.locator("[data-testid='stSidebar']")
    side.get_by_text("Model:").wait_for(timeout=60_000)
    text = side.inner_text()
    assert "Compare video" in text and "Setup & share" in text and "common" not in text, text


def wait_for_upload_results(page, timeout_s: float = 300) -> None:
    """Until the page shows the uploaded pictures' results: before, it shows the bundled samples' (bus first)."""
    page.get_by_text("Showing the sample images").wait_for(state="detached", timeout=timeout_s * 1000)
    page.get_by_text("Differences from ort:fp32").first.wait_for(timeout=timeout_s * 1000)  # old one may linger
    wait_idle(page, timeout_s)


def loaded_images(page) -> int:
    return page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=\"stMain\"] img')]"
        ".filter(i => i.complete && i.naturalWidth > 100).length"
    )


def loaded_images_at_least(page, n: int, timeout_s: float = 60) -> int:
    """How many pictures the page shows once at least ``n`` have loaded (the browser fetches them after the
    script run has drawn them; a busy machine takes a moment), or as many as there are when time runs out."""
    import contextlib

    with contextlib.suppress(Exception):
        page.wait_for_function(
            "n => [...document.querySelectorAll('[data-testid=\"stMain\"] img')]"
            ".filter(i => i.complete && i.naturalWidth > 100).length >= n",
            arg=n,
            timeout=timeout_s * 1000,
        )
    return loaded_images(page)


def _short_clip(videos_dir: Path, dest: Path, frames: int = 45) -> Path:
    import av

    with av.open(str(videos_dir / "street_people_car_tokyo_360p.mp4")) as src, av.open(str(dest), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            for pkt in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return dest


def test_upload_clip_live_chart_and_playable_result(server, page, videos_dir, tmp_path):
    # First in this module on purpose: the server's first visitor opens a page's URL directly (Streamlit
    # would run pages/compare_video.py on its own, without app.py, unless the page reroutes it).
    # 6 s of video: long enough to be still running over several of the page's 2 s redraws on a fast machine
    clip = _short_clip(videos_dir, tmp_path / "tokyo-first-6s.mp4", frames=180)
    page.goto(f"{server}/compare_video")
    page.get_by_text("Compare video").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert_app_sidebar(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(clip))
    wait_idle(page)
    page.get_by_role("button", name="Start").click()
    # while it runs: the live chart appears and gains points
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    points = (
        "() => { const p = document.querySelector('.js-plotly-plot'); return p && p.data ? p.data[0].y.length : 0 }"
    )
    first = page.evaluate(points)
    shot(page, "compare_video_live")
    # everything that would change the running job is locked: variants, thresholds, Start
    assert page.get_by_text("Settings are locked while the clip is processed").is_visible()
    boxes = page.locator("[data-testid='stMain'] [data-testid='stCheckbox'] input")
    assert boxes.count() > 0 and all(boxes.nth(i).is_disabled() for i in range(boxes.count()))
    assert page.get_by_role("button", name="Start").is_disabled()
    page.wait_for_function(f"() => ({points})() > {first}", timeout=60_000)
    # at the end: the side-by-side video plays in the browser
    page.locator("video").first.wait_for(timeout=300_000)
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.readyState >= 3 && !v.error }",
        timeout=60_000,
    )
    assert page.evaluate("() => document.querySelector('video').error") is None
    assert page.evaluate("() => document.querySelector('video').videoWidth") > 600
    shot(page, "compare_video_done")
    assert "Traceback" not in page.content()
    # away and back: the page shows the results of the uploaded clip and keeps it chosen
    page.locator("[data-testid='stSidebar']").get_by_text("Models").click()
    page.get_by_role("heading", name="Models").first.wait_for(timeout=60_000)
    page.locator("[data-testid='stSidebar']").get_by_text("Compare video").click()
    page.get_by_text("Made with").first.wait_for(timeout=60_000)
    wait_idle(page)
    shot(page, "compare_video_back")
    chosen = page.evaluate(  # what the clip picker shows: its text, or its input's value
        "() => [...document.querySelectorAll('[data-testid=\"stSelectbox\"]')]"
        ".map(s => s.innerText + ' ' + [...s.querySelectorAll('input')].map(i => i.value).join(' ')).join(' | ')"
    )
    assert "tokyo-first-6s.mp4 (your upload)" in chosen, chosen
    assert page.get_by_text("tokyo-first-6s.mp4: 180 frames").first.is_visible()


def test_upload_bus_compare_two_variants(server, page, bus_jpg):
    page.goto(server)
    page.get_by_text("Compare images").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert_app_sidebar(page)
    page.get_by_text("Showing the sample images").wait_for(timeout=120_000)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(bus_jpg))
    wait_for_upload_results(page)
    assert loaded_images_at_least(page, 3) >= 3  # one annotated image per variant + the diff
    metrics = page.locator("[data-testid='stMetricValue']").all_inner_texts()
    assert metrics[0] == "4" and metrics[2] == "4"  # 4 objects for ort:fp32 and for ort:int8
    page.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)  # the latency chart rendered
    assert "Traceback" not in page.content()
    shot(page, "compare_images_bus")


def _metric_values(page) -> list[str]:
    return page.locator("[data-testid='stMetricValue']").all_inner_texts()


def test_four_sessions_at_once_each_see_their_own_results(server, browser, detectors, val_dir, tmp_path):
    """One session processes a clip while three others upload different images and compare at the same time:
    none crashes, each sees the counts for its own picture, and the video session keeps going meanwhile."""
    from core.data.images import load_image
    from core.data.samples import sample_image

    pictures = [sample_image("bus.jpg"), sample_image("zidane.jpg"), val_dir / "images" / "000000000139.jpg"]
    want = [
        [str(len(detectors[v].detect(load_image(p)).detections)) for v in ("ort:fp32", "ort:int8")] for p in pictures
    ]
    assert len({tuple(w) for w in want}) == 3  # three different answers: a mix-up between sessions would show
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(4)]
    try:
        video, *viewers = [c.new_page() for c in contexts]
        video.goto(f"{server}/compare_video")
        video.get_by_text("Compare video").first.wait_for(timeout=120_000)
        wait_idle(video)
        video.get_by_role("button", name="Start").click()  # the default sample clip, every frame
        video.get_by_role("button", name="Stop").wait_for(timeout=120_000)
        for pg in viewers:
            pg.goto(server)
        for pg in viewers:
            pg.get_by_text("Showing the sample images").wait_for(timeout=120_000)  # the page is up
        for pg, picture in zip(viewers, pictures, strict=True):  # three uploads in flight together
            pg.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(picture))
        for pg, picture, counts in zip(viewers, pictures, want, strict=True):
            wait_for_upload_results(pg)
            metrics = _metric_values(pg)
            assert [metrics[0], metrics[2]] == counts, (picture.name, metrics)
            assert "Traceback" not in pg.content()
        assert video.get_by_role("button", name="Stop").is_visible()  # still processing: it was served alongside
        shot(viewers[0], "concurrent_compare_bus")
        shot(video, "concurrent_video_running")
        video.get_by_role("button", name="Stop").click()
        video.get_by_text("what was processed is below").wait_for(timeout=120_000)
        video.wait_for_function(
            "() => { const v = document.querySelector('video'); return v && v.readyState >= 3 && !v.error }",
            timeout=60_000,
        )
        assert "Traceback" not in video.content()
    finally:
        for c in contexts:
            c.close()


def test_a_walk_through_every_page_requests_nothing_off_this_machine_and_fits_1280px(server, browser):
    """Presentations happen offline: every request stays on the server's host. At a 1280 px projector width,
    Compare images and Benchmark scroll vertically only."""
    from urllib.parse import urlparse

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    outside: list[str] = []
    pg.on("request", lambda r: outside.append(r.url) if urlparse(r.url).hostname not in ("127.0.0.1", None) else None)
    try:
        for path, title in [("", "Compare images"), ("compare_video", "Compare video"), ("live", "Live"),
                            ("benchmark", "Benchmark"), ("accuracy", "Accuracy"), ("precision", "Precision explorer"),
                            ("models", "Models"), ("report", "Report")]:  # fmt: skip
            pg.goto(f"{server}/{path}")
            pg.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
            wait_idle(pg)
            if path in ("", "benchmark"):
                if path == "benchmark":
                    pg.get_by_role("button", name="Run benchmark").click()
                    pg.get_by_text("Decision").first.wait_for(timeout=300_000)
                    wait_idle(pg)
                width = pg.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth")
                assert width <= 1280, (title, width)
                shot(pg, f"walk_1280_{path or 'compare_images'}")
        assert outside == [], outside
    finally:
        ctx.close()


def _cut_off(pg) -> list[str]:
    """Metric values and labels the browser shows shortened with an ellipsis (wider than their box)."""
    return pg.evaluate(
        '() => [...document.querySelectorAll(\'[data-testid="stMetricValue"] *, [data-testid="stMetricLabel"] *\')]'
        ".filter(e => e.children.length == 0 && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"
    )


def _fits(pg, width: int, title: str) -> None:
    scroll = pg.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth")
    assert scroll <= width, (title, scroll)


def test_a_reload_keeps_the_results_and_1024px_cuts_nothing_off(server, browser, bus_jpg):
    """Results live on the server under the key in the URL: reloading the tab (or a page switch in between)
    shows the same upload and the same benchmark again, without running anything. At 1024 px nothing
    scrolls sideways."""
    ctx = browser.new_context(viewport={"width": 1024, "height": 900})
    pg = ctx.new_page()
    try:
        pg.goto(server)
        pg.get_by_text("Showing the sample images").wait_for(timeout=120_000)
        wait_idle(pg)
        assert "session=" in pg.url
        pg.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(bus_jpg))
        wait_for_upload_results(pg)
        before = _metric_values(pg)
        _fits(pg, 1024, "Compare images")
        assert _cut_off(pg) == []
        shot(pg, "walk_1024_compare_images")
        pg.locator("[data-testid='stSidebar']").get_by_text("Benchmark").click()
        pg.get_by_role("button", name="Run benchmark").click()
        pg.get_by_text("Decision").first.wait_for(timeout=300_000)
        wait_idle(pg)
        _fits(pg, 1024, "Benchmark")
        shot(pg, "walk_1024_benchmark")
        table = pg.locator("[data-testid='stDataFrame']").first.inner_text()
        assert "session=" in pg.url

        pg.reload()
        pg.get_by_text("Decision").first.wait_for(timeout=120_000)  # no click: the kept results
        wait_idle(pg)
        assert pg.locator("[data-testid='stDataFrame']").first.inner_text() == table
        assert "Press **Run benchmark**" not in pg.content()
        # run again: meanwhile the old results stay, marked as the previous run's, their downloads off
        pg.get_by_role("button", name="Run benchmark").click()
        pg.get_by_text("Below: the previous run's results").wait_for(timeout=60_000)
        pg.wait_for_function(  # the previous results drawn again, both downloads off
            "() => { const b = [...document.querySelectorAll('[data-testid=\"stDownloadButton\"] button')];"
            " return b.length == 2 && b.every(x => x.disabled) }",
            timeout=60_000,
        )
        downloads = pg.locator("[data-testid='stDownloadButton'] button")
        shot(pg, "benchmark_rerun_stale")
        pg.get_by_text("Below: the previous run's results").wait_for(state="detached", timeout=300_000)
        wait_idle(pg)
        assert all(downloads.nth(i).is_enabled() for i in range(2))
        pg.locator("[data-testid='stSidebar']").get_by_text("Compare images").click()
        pg.get_by_text("you uploaded earlier").wait_for(timeout=120_000)
        pg.get_by_text("Differences from ort:fp32").first.wait_for(timeout=120_000)
        wait_idle(pg)
        assert _metric_values(pg)[0::2] == before[0::2]  # the same counts (latency adds this draw's NMS time)
        shot(pg, "reload_compare_images_kept_upload")
    finally:
        ctx.close()


def test_precision_explorer_saves_a_recipe_that_compare_images_then_offers(server, page):
    page.goto(f"{server}/precision")
    page.get_by_role("heading", name="Precision explorer").first.wait_for(timeout=120_000)
    wait_idle(page)
    for label in ("Labelled images", "Drift images (calibration)"):  # the smallest run: 8 images, 1 for drift
        slider = page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")
        slider.focus()
        slider.press("Home")
        wait_idle(page)
    blocks = page.get_by_label("Sensitivity: worst K blocks (0 = all)")
    blocks.fill("1")
    blocks.press("Enter")
    wait_idle(page)
    cals = page.locator("[data-testid='stMultiSelect']").filter(has_text="Calibration settings")
    cals.get_by_role("button", name="Clear all").click()
    wait_idle(page)
    page.get_by_role("button", name="Explore").click()
    # the heading, not the text: the progress line says "the chosen recipe on the N report-split images" meanwhile
    page.get_by_role("heading", name="Chosen recipe").first.wait_for(timeout=300_000)
    wait_idle(page)
    page.locator(".js-plotly-plot").nth(2).wait_for(timeout=30_000)  # front, sensitivity and drift charts
    shot(page, "precision_explorer_result")
    page.get_by_role("button", name="Use this recipe").click()
    saved = page.get_by_text("Saved as")
    saved.wait_for(timeout=60_000)
    variant = saved.inner_text().split("Saved as ")[1].split(":")[0:2]
    name = ":".join(variant).strip()  # "ort:int8@auto-cpu-drop0.3"
    assert name.startswith("ort:int8@auto-cpu-drop0.3"), name

    page.goto(server)
    page.get_by_text("Compare images").first.wait_for(timeout=120_000)
    wait_idle(page)
    box = page.get_by_role("checkbox", name=name, exact=True)
    box.wait_for(timeout=60_000)
    box.check(force=True)
    # its headline among the results: "ort:int8@auto-… — 1.2x faster than ort:fp32 …"
    page.get_by_text(re.compile(f"^{re.escape(name)} — ")).first.wait_for(timeout=300_000)
    wait_idle(page)
    assert "Traceback" not in page.content()
    shot(page, "compare_images_with_recipe")


def test_a_benchmark_left_for_another_page_finishes_and_is_there_on_return(server, page):
    """The benchmark runs on a worker thread: while it runs its settings are locked and Stop is offered;
    a switch to Models and back finds it still going or done, then shows its results."""
    page.goto(f"{server}/benchmark")
    page.get_by_role("heading", name="Benchmark").first.wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_role("checkbox", name="ort:int8", exact=True).uncheck(force=True)  # ort:fp32 and ort:fp16
    wait_idle(page)
    for label, value in (("Warm-up runs", "1"), ("Timed runs", "400")):  # long enough to be seen running
        box = page.get_by_label(label)
        box.fill(value)
        box.press("Enter")
        wait_idle(page)
    page.get_by_role("button", name="Run benchmark").click()
    page.get_by_role("button", name="Stop").wait_for(timeout=120_000)
    page.get_by_text("Settings are locked while the benchmark runs").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Run benchmark").is_disabled()
    shot(page, "benchmark_job_running")

    side = page.locator("[data-testid='stSidebar']")
    side.get_by_text("Models").click()
    page.get_by_role("heading", name="Models").first.wait_for(timeout=60_000)
    side.get_by_text("Benchmark").click()
    page.get_by_role("heading", name="Benchmark").first.wait_for(timeout=60_000)
    page.get_by_text("Decision").first.wait_for(timeout=300_000)  # the job's results, no second click
    wait_idle(page)
    headlines = page.get_by_text(re.compile(r"^ort:(fp32|fp16|int8) — "))  # one decision headline per variant
    assert sorted(t.split(" — ")[0] for t in headlines.all_inner_texts()) == ["ort:fp16", "ort:fp32"]
    assert page.get_by_role("button", name="Run benchmark").is_enabled()
    assert page.get_by_role("button", name="Stop").count() == 0
    assert "Traceback" not in page.content()
    shot(page, "benchmark_job_back_with_results")


def test_benchmark_shows_where_the_time_goes_and_the_memory(server, page):
    page.goto(f"{server}/benchmark")
    page.get_by_role("heading", name="Benchmark").first.wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_role("checkbox", name="ort:fp16", exact=True).uncheck(force=True)  # ort:fp32 and ort:int8
    wait_idle(page)
    page.get_by_role("button", name="Run benchmark").click()
    page.get_by_text("Decision").first.wait_for(timeout=300_000)
    wait_idle(page)
    page.get_by_role("button", name="Profile these variants").click()
    page.get_by_text("ort:int8 against ort:fp32: ").first.wait_for(timeout=300_000)
    wait_idle(page)
    page.get_by_text("ort:int8: 56 of 60 convolutions ran in int8").first.wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"^ort:fp32: file 7\.\d MB; loading adds \d+ MB")).first.wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() >= 5  # the benchmark's charts and the profile's two
    assert "Traceback" not in page.content()
    page.get_by_text("ort:int8 against ort:fp32: ").first.scroll_into_view_if_needed()
    shot(page, "benchmark_where_the_time_goes")
    page.locator(".js-plotly-plot").nth(4).scroll_into_view_if_needed()
    shot(page, "benchmark_where_the_time_goes_blocks")
