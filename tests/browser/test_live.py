"""Live in a real browser: Chromium's fake camera plays a clip from ../shared into the Live page over WebRTC.

Two variants detect on the same frames for more than 10 s while their latencies update; the processed rate agrees
with the engine's latency; Record gives an H.264 file with one frame per processed frame; closing the tab gives
the server's threads and memory back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.browser.serve import NO_CHROMIUM, chromium, shot, streamlit_server, wait_idle

pytestmark = [pytest.mark.browser, NO_CHROMIUM]

WORDS = re.compile(r"([\d.]+) frames/s processed \(the variants one after the other allow ([\d.]+)\); (\d+) of (\d+)")


def _y4m(videos_dir: Path, dest: Path, frames: int = 150) -> Path:
    """The Tokyo street clip as the raw YUV4MPEG file Chromium's fake camera plays (in a loop), 640x360 at 30 fps."""
    import av

    source = videos_dir / "street_people_car_tokyo_360p.mp4"
    with av.open(str(source)) as src, av.open(str(dest), "w", "yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            frame = frame.reformat(640, 360, "yuv420p")
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return dest


@pytest.fixture(scope="module")
def server(yolov5n_pt, calib_dir, session_cache, tmp_path_factory) -> Iterator[str]:
    env = {
        "YOLOLAB_MODEL": str(yolov5n_pt),
        "YOLOLAB_CALIB_DIR": str(calib_dir),
        "YOLOLAB_CACHE_DIR": str(session_cache),
        "MALLOC_ARENA_MAX": "2",  # as start.sh serves it
    }
    with streamlit_server(env, tmp_path_factory.mktemp("live-log")) as url:
        yield url


@pytest.fixture(scope="module")
def camera_browser(videos_dir, tmp_path_factory):
    clip = _y4m(videos_dir, tmp_path_factory.mktemp("camera") / "camera.y4m")
    with chromium(
        "--use-fake-ui-for-media-stream",  # allow the camera without a prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ) as b:
        yield b


def _open_live(browser, url: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    pg = ctx.new_page()
    pg.goto(f"{url}/live")
    pg.get_by_role("heading", name="Live").first.wait_for(timeout=120_000)
    start = pg.frame_locator("iframe").first.get_by_role("button", name="Start")
    start.wait_for(timeout=600_000)  # the first visit builds the INT8 file
    wait_idle(pg)
    return ctx, pg, start


def _figures(pg) -> dict[str, str]:
    out = {}
    for text in pg.locator("[data-testid='stMetric']").all_inner_texts():
        label, _, value = text.partition("\n")
        out[label.strip()] = value.strip()
    return out


def _words(pg) -> tuple[float, float, int, int]:
    text = pg.get_by_text("frames/s processed").first.inner_text()
    m = WORDS.search(text)
    assert m, text
    return float(m[1]), float(m[2]), int(m[3]), int(m[4])


def _record_toggle(pg):
    return pg.locator("[data-testid='stCheckbox'] label").filter(has_text=re.compile(r"^\s*Record\s*$")).first


def _server_now(pid: int) -> tuple[int, float]:
    p = psutil.Process(pid)
    return p.num_threads(), p.memory_info().rss / 2**20


def test_the_camera_through_two_variants_live_recorded_and_released(server, camera_browser, tmp_path):
    import av

    # before: the server after a first live session, closed. Its first camera loads what every later one shares
    # (WebRTC's event-loop executor threads, the VP8 and H.264 codecs: 3 threads, ~75 MB here, once per process);
    # what must not grow is what each session adds
    ctx, pg, start = _open_live(camera_browser, server)
    start.click()
    pg.get_by_text("frames/s processed").first.wait_for(timeout=60_000)
    _record_toggle(pg).click()
    pg.wait_for_timeout(3000)
    _record_toggle(pg).click()
    pg.get_by_role("heading", name=re.compile(r"Recording: \d+ frames")).wait_for(timeout=60_000)
    ctx.close()
    time.sleep(8)
    threads_before, rss_before = _server_now(server.pid)

    ctx, pg, start = _open_live(camera_browser, server)
    start.click()
    pg.get_by_text("frames/s processed").first.wait_for(timeout=60_000)
    seen: list[dict[str, str]] = []
    began = time.monotonic()
    while time.monotonic() - began < 12:
        pg.wait_for_timeout(2000)
        seen.append(_figures(pg))
    for variant in ("ort:fp32", "ort:int8"):
        values = [f[variant] for f in seen]
        assert all(v.startswith("p50 ") and v.endswith(" ms") for v in values), values
    processed = [f["processed"] for f in seen]
    assert len(set(processed)) > 1 and len({f["dropped"] for f in seen}) > 1, seen  # the figures move
    fps, bound, dropped, received = _words(pg)
    assert 0 < fps <= 1.2 * bound, (fps, bound)  # the variants one after the other set the pace
    assert dropped > 0 and received > dropped  # a 30 fps camera outruns two variants on this machine's cores
    shot(pg, "live_running")
    # the view shows both variants' detections: the WebRTC video plays the side-by-side frames
    video = pg.frame_locator("iframe").first.locator("video")
    assert video.evaluate("v => v.videoWidth") >= 2 * video.evaluate("v => v.videoHeight")

    _record_toggle(pg).click()
    pg.wait_for_timeout(6000)
    _record_toggle(pg).click()
    heading = pg.get_by_role("heading", name=re.compile(r"Recording: \d+ frames"))
    heading.wait_for(timeout=60_000)
    frames = int(re.search(r"Recording: (\d+) frames", heading.inner_text())[1])
    with pg.expect_download() as dl:
        pg.get_by_role("button", name="Download the recording (MP4)").click()
    path = tmp_path / "live.mp4"
    dl.value.save_as(path)
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video=0)) == frames > 10
    shot(pg, "live_recorded")

    ctx.close()  # the tab goes away with the camera running
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        threads, rss = _server_now(server.pid)
        if threads <= threads_before and rss <= rss_before + 50:
            break
        time.sleep(2)
    assert threads <= threads_before, (threads, threads_before)
    assert rss <= rss_before + 50, (rss, rss_before)
