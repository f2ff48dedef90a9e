"""Live: the browser's camera (or an operator's stream) through 2-4 variants side by side, as it happens."""

import io
import time
import uuid

import streamlit as st
from PIL import Image

from core.errors import InputError
from core.video import LiveSession, LiveStatus, check_url
from ui import access, live, messages, model, navigation, pool, session_files, widgets
from ui.state import CompareImagesState, LiveState, Preset

navigation.through_app_navigation()

POLL_SECONDS = 1.0  # how often the figures under the view are redrawn
CAMERA = "This browser's camera"
STREAM = "A camera stream (RTSP / HTTP)"

st.title("Live")
st.caption(
    "Point the camera at the room: every frame through each chosen variant, side by side, with each variant's "
    "latency, the frames processed per second and the frames dropped when the variants cannot keep up (the view "
    "stays at most one frame behind the camera). Frames stay in memory; nothing is written unless **Record** is on."
)

store = model.active_store()
if store is None:
    st.stop()
state = LiveState.read()
h = live.holder()

with st.expander("Variants", expanded=True):
    variants = widgets.variant_picker("live", store)
params = widgets.post_controls(store.info().names, "live")
sources = [CAMERA, STREAM] if access.streams() else [CAMERA]
source = st.radio("Source", sources, horizontal=True, key="live:source")
if not access.streams():
    st.caption("Camera stream URLs are off on a shared dashboard unless the operator allows them (--allow-streams).")
if not LiveSession.MIN_VARIANTS <= len(variants) <= LiveSession.MAX_VARIANTS:
    st.info(f"Tick {LiveSession.MIN_VARIANTS} to {LiveSession.MAX_VARIANTS} variants to compare them live.")
    st.stop()
detectors = pool.open_detectors(store, variants, beside_other_work=True)
if detectors is None:
    st.stop()
session: LiveSession = h.ensure(detectors, params, (store.source.name, store.shape_words, tuple(variants), params))

c1, c2 = st.columns([1, 3])
record = c1.toggle("Record", key="live:record", help="write the side-by-side view as H.264 with per-frame latencies")
if record and not session.recording:
    session.start_recording(session_files.session_dir() / f"live-{uuid.uuid4().hex[:8]}.mp4")
elif not record and session.recording and (done := session.stop_recording()) is not None:
    h.finished = done
if h.finished is not None:  # a recording that ended (Record off, the camera stopped, settings changed)
    state.recording, h.finished = h.finished, None
    state.write()
snap = c2.button("Snapshot to Compare images", key="live:snapshot",
                 help="the current camera frame, run through these variants with their diffs")  # fmt: skip
if snap:
    frame = session.last_frame
    if frame is None:
        st.warning("No frame yet: start the camera first.")
    else:
        path = session_files.session_dir() / f"live-snapshot-{time.strftime('%H%M%S')}.png"
        Image.fromarray(frame).save(path)
        images = CompareImagesState.read()
        images.preset = Preset([str(path)], "the Live page's snapshot", [str(v) for v in variants])
        images.uploads = None
        images.write()
        st.switch_page("pages/compare_images.py")


def _figures(status: LiveStatus) -> None:
    boxes = st.columns(len(status.variants) + 2)
    boxes[0].metric("processed", f"{status.fps:.1f} fps", help="frames through every variant per second, last 5 s")
    boxes[1].metric("dropped", f"{status.dropped}", help="frames skipped while the variants were busy")
    for box, v in zip(boxes[2:], status.variants, strict=True):
        if v.latency.count:
            box.metric(v.variant, f"p50 {v.latency.p50:.0f} ms", help=f"median ms per frame over {v.latency.count}")
            box.caption(f"p95 {v.latency.p95:.0f} ms · {v.objects} objects")
        else:
            box.metric(v.variant, "–")
    st.caption(status.words() + (f"; recording: {status.recording} frames" if status.recording is not None else ""))


def _recording() -> None:
    rec = state.recording
    if rec is None:
        return
    st.subheader(f"Recording: {rec.frames} frames, {rec.seconds:.1f} s")
    if not rec.video.is_file():
        st.info("The recording was removed with this session's temporary files.")
        return
    data = rec.video.read_bytes()
    st.video(data, format="video/mp4", muted=True)
    d1, d2 = st.columns(2)
    d1.download_button("Download the recording (MP4)", data, rec.video.name, "video/mp4", key="live:dl-video")
    d2.download_button("Per-frame latencies (CSV)", rec.csv_text, rec.video.with_suffix(".csv").name, "text/csv",
                       key="live:dl-csv")  # fmt: skip


# the live figures redraw in a loop that holds this script run until the camera stops or a widget reruns it, so
# everything else is drawn first and the loop comes last
if source == CAMERA:
    try:
        ctx = live.camera(h, "live:camera")
    except ValueError as exc:  # a malformed $YOLOLAB_ICE_SERVERS
        st.error(str(exc))
        st.stop()
    st.caption(
        "Needs a camera and a browser that allows it: on this machine (localhost) or over HTTPS. "
        "No STUN/TURN server is contacted unless the operator sets $YOLOLAB_ICE_SERVERS."
    )
    box = st.empty()
    _recording()
    if not ctx.state.playing and session.processed:
        with box.container():
            _figures(session.status())
    if ctx.state.playing:
        h.watch(ctx, live.session_alive())
    while ctx.state.playing:
        with box.container():
            _figures(session.status())
        time.sleep(POLL_SECONDS)
else:
    url = st.text_input("Stream URL", key="live:url", placeholder="rtsp://192.168.1.20:554/stream1")
    s1, s2 = st.columns([1, 5])
    feed = h.feed
    if s1.button("Connect", type="primary", disabled=feed is not None and feed.running):
        try:
            feed = h.start_feed(check_url(url), live.session_alive())
        except InputError as exc:
            st.error(messages.error_text(exc))
            st.stop()
    if feed is not None and s2.button("Disconnect"):
        h.stop_feed()
        feed = None
    view_box, figure_box, state_box = st.empty(), st.empty(), st.empty()
    _recording()
    while feed is not None and feed.running:
        s = feed.source.state()
        if session.last_view is not None:
            buf = io.BytesIO()
            Image.fromarray(session.last_view).save(buf, format="JPEG", quality=80)
            view_box.image(buf.getvalue(), width="stretch")
        with figure_box.container():
            _figures(session.status())
        state_box.caption(
            f"{feed.source.shown}: "
            + ("connected" if s.connected else f"reconnecting ({s.error})")
            + (f"; {s.reconnects} reconnects" if s.reconnects else "")
        )
        time.sleep(POLL_SECONDS)
    if feed is not None:
        s = feed.source.state()
        if s.failed or feed.error:
            state_box.error(feed.error or s.error)
        h.stop_feed()
