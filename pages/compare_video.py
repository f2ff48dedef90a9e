"""Compare video: variants side by side on every frame, live latency, and a playable result video."""

import io
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image

from core.config import cache_dir
from core.data import sample_videos
from core.errors import InputError
from core.measure import LatencyStats, transfer_lines
from core.report import video_latency
from core.runtime import PostParams
from core.video import DEMO_CLIP, VIDEO_TYPES, VideoJob, demo_clip, latency_table, probe, slowed_copy
from ui import messages, model, navigation, pool, report_sections, session_files, widgets
from ui.state import VideoState

navigation.through_app_navigation()


@dataclass(frozen=True)
class Clip:
    """The clip of the last run, and the settings that made its results."""

    label: str  # as the clip picker shows it
    path: Path
    name: str
    settings: str


def _settings(store, job: VideoJob, params: PostParams, max_frames: int) -> str:
    classes = "all classes" if params.classes is None else f"{len(params.classes)} classes"
    frames = f"the first {max_frames} frames" if max_frames else "every frame"
    return (
        f"{store.source.name} @ {store.shape_words} px; {', '.join(job.variants)}; conf {params.conf}, "
        f"NMS IoU {params.iou}, {classes}; {frames}"
    )


# While a clip runs the page redraws the frame every POLL_SECONDS and the chart every CHART_EVERY polls.
# Each redraw costs the server and, more, the browser (plotly re-renders the whole chart): on a 2-core
# machine faster redraws take measurable throughput from inference (bench/video_app.py).
POLL_SECONDS = 2.0
CHART_EVERY = 2
PREVIEW_WIDTH = 720

st.title("Compare video")
st.caption(
    "Every frame through every chosen variant; latency per frame as it happens; a side-by-side video at the end."
)

store = model.active_store()
if store is None:
    st.stop()
state = VideoState.read()
job: VideoJob | None = state.job
busy = job is not None and job.running

if busy:
    st.caption("Settings are locked while the clip is processed: **Stop** it to change them.")
with st.expander("Variants", expanded=not busy):
    variants = widgets.variant_picker("vid", store, disabled=busy)
upload = st.file_uploader(
    f"Video ({', '.join(VIDEO_TYPES)}; up to {widgets.MAX_UPLOAD_MB} MB)", type=list(VIDEO_TYPES), disabled=busy
)
samples = {p.name: p for p in sample_videos()}
DEMO = f"{DEMO_CLIP} (made from the sample pictures)"
# the clip the shown results belong to (kept across page switches and reloads): chosen again by default,
# and an uploaded one stays selectable, so coming back never arms a different clip
clip: Clip | None = state.clip
clips = [*samples, DEMO]
if clip is not None and clip.label not in clips and clip.path.is_file():
    clips.append(clip.label)
c1, c2 = st.columns([2, 1])
sample = c1.selectbox(
    "…or a clip",
    clips,
    index=clips.index(clip.label) if clip is not None and clip.label in clips else 0,
    disabled=busy or upload is not None,
)
max_frames = c2.number_input("Frames to process (0 = all)", 0, 100_000, 0, key="vid:max", disabled=busy)
params = widgets.post_controls(store.info().names, "vid", disabled=busy)


def _preview_jpeg(rgb) -> bytes:
    img = Image.fromarray(rgb)
    if img.width > PREVIEW_WIDTH:
        img = img.resize((PREVIEW_WIDTH, round(img.height * PREVIEW_WIDTH / img.width)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


start = st.button("Start", type="primary", disabled=busy)
if start:
    if not variants:
        st.warning("Tick at least one variant.")
        st.stop()
    if upload is not None:
        path = session_files.session_dir() / f"upload-{uuid.uuid4().hex[:8]}-{session_files.safe_name(upload.name)}"
        path.write_bytes(upload.getvalue())
        name = upload.name
        try:  # a file that is no video (empty, cut off before its index, audio only...) is named at once
            probe(path, name=name)
        except InputError as exc:
            path.unlink(missing_ok=True)
            st.error(messages.error_text(exc))
            st.stop()
        label = f"{name} (your upload)"
    elif sample in samples:
        path, name, label = samples[sample], sample, sample
    elif sample == DEMO:
        with st.spinner("Making the demo clip (once)…"):
            path = demo_clip(cache_dir() / "samples")
        name, label = path.name, DEMO
    else:  # the upload of the last run
        assert clip is not None
        path, name, label = clip.path, clip.name, clip.label
    detectors = pool.open_detectors(store, variants, beside_other_work=True)
    if detectors is None:
        st.stop()
    output = session_files.session_dir() / f"compare-{uuid.uuid4().hex[:8]}.mp4"
    job = VideoJob(path, name, detectors, params, output, int(max_frames) or None)
    session_files.track_job(job)  # stopped if this session goes away
    state.job = job
    state.clip = Clip(label, path, name, _settings(store, job, params, int(max_frames)))
    state.write()
    st.rerun()  # redraw with the inputs locked (Start disabled) while the job runs

if job is None:
    st.info("Upload a clip or pick a sample, then press **Start**.")
    st.stop()

# -- live view while the worker runs; a Stop click reruns the script and lands here -----------------
if job.running:
    if st.button("Stop", key="vid:stop"):
        job.stop()
    bar = st.progress(0.0, text=f"Processing {job.name}…")
    frame_box = st.empty()
    # placeholders made once and updated in place: re-creating columns every poll costs the browser more
    metric_boxes = [c.empty() for c in st.columns(len(job.variants) + 1)]
    chart_box = st.empty()
    tick = 0
    while job.running:
        latest, latency = job.snapshot()
        if latest is not None:
            if latest.image is not None:
                # JPEG bytes: a small media file the browser fetches by URL (cheap to show, nothing re-parsed)
                frame_box.image(_preview_jpeg(latest.image), width="stretch")
            if tick % CHART_EVERY == 0:  # counter, metrics and chart from one snapshot: they never disagree
                done = latest.index + 1
                bar.progress(min(done / latest.total, 1.0), text=f"frame {done}/{latest.total}")
                metric_boxes[0].metric(
                    "processed", f"{latest.fps:.1f} fps", help="frames per second for everything together"
                )
                for box, (v, s) in zip(metric_boxes[1:], latency.items(), strict=True):
                    ls = LatencyStats.from_samples(s)
                    box.metric(v, f"p50 {ls.p50:.0f} ms", help="median ms per frame, end to end, this variant")
                    box.caption(f"p95 {ls.p95:.0f} ms")
                chart_box.plotly_chart(video_latency(latency, upto=done), key=f"vid:live:{tick}")
            tick += 1
        time.sleep(POLL_SECONDS)
    st.rerun()  # draw the finished state

# -- finished -----------------------------------------------------------------------------------------
if job.error:
    st.error(job.error)
    st.stop()
run = job.result
for why in run.lost.values():  # a variant whose cluster node went away mid-run
    st.warning(why)
transfer_text = transfer_lines(job.transfer_ms())
for line in transfer_text:
    st.caption(line)
_, latency = job.snapshot()
if run.stopped:
    st.warning(f"Stopped after {run.frames} frames; what was processed is below.")
if run.damage:
    st.warning(f"{job.name}: {run.damage}")
st.subheader(f"{job.name}: {run.frames} frames at {run.fps_processed:.1f} fps processed")
if clip is not None:
    st.caption(f"Made with {clip.settings}.")
st.caption(
    "fps processed: frames per second for decoding, every variant, drawing and encoding together; "
    "FPS (engine) in the table: what each variant alone would sustain, 1000 / its median ms per frame."
)
video_bytes = run.output.read_bytes() if run.output is not None and run.output.is_file() else None
if video_bytes is not None and run.output is not None:
    p1, p2 = st.columns([1, 3])
    slow = p1.toggle("Slow motion (¼ speed)", key="vid:slow", help="the same frames, played four times slower")
    loop = p2.toggle("Loop", value=True, key="vid:loop")
    shown = video_bytes
    if slow:
        slowed = run.output.with_name(f"{run.output.stem}-slow.mp4")
        if not slowed.is_file():
            slowed_copy(run.output, slowed)
        shown = slowed.read_bytes()
    st.video(shown, format="video/mp4", loop=loop, muted=True)
elif run.output is not None:
    st.info("The result video was removed with this session's temporary files; press Start to make it again.")
stats = latency_table(latency)
table = widgets.table_frame(stats)
widgets.show_table(stats, table)
for note in stats.notes:
    st.caption(note)
fig = video_latency(latency)
st.plotly_chart(fig, key="vid:final")
st.caption(
    f"Server memory (RSS): {job.rss_start_mb:.0f} MB at start, {job.rss_warm_mb:.0f} MB after "
    f"{min(job.RSS_WARM_FRAMES, run.frames)} frames (inference buffers allocated), {job.rss_end_mb:.0f} MB at the end."
)
d1, d2 = st.columns(2)
if video_bytes is not None:
    d1.download_button("Download the video (MP4)", video_bytes, f"compare-{Path(job.name).stem}.mp4", "video/mp4")
d2.download_button("Per-frame latencies (CSV)", run.csv_text(), f"latency-{Path(job.name).stem}.csv", "text/csv")
still = latest_frame.image if (latest_frame := job.snapshot()[0]) is not None else None
report_sections.put_section(
    "video",
    report_sections.ReportSection(
        "Compare video",
        [
            (
                "text",
                f"{job.name}: {run.frames} frames, {run.fps_processed:.1f} fps processed (decode, every variant, "
                "drawing and encoding together; FPS (engine) below is each variant alone).",
            ),
            *([("image", (f"{job.name}: the last processed frame, side by side", still))] if still is not None else []),
            ("table", table),
            *[("text", line) for line in transfer_text],
            *[("text", note) for note in stats.notes],
            ("figure", fig),
        ],
    ),
)
