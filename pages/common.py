"""What every page shares: the active model, loaded detectors, the variant picker, progress, the report.

Pages stay short scripts (inputs -> guard -> core call -> render); everything they have in common is here.
Nothing here computes a number: that is core's job.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from core.backends import Availability, BackendOptions, availability
from core.config import DEFAULT_IMGSZ, cache_dir
from core.detector import Detector
from core.errors import CoreError
from core.processing import PostParams
from core.report import ReportSection
from core.store import ModelStore
from core.variants import REFERENCE, VARIANTS, Precision, Runtime, Variant

ENV_MODEL = "YOLOLAB_MODEL"  # the model the app starts with (path or official name)
ENV_CALIB = "YOLOLAB_CALIB_DIR"  # default folder of INT8 calibration images
ENV_DATA = "YOLOLAB_EVAL_DATA"  # default labelled dataset for the Accuracy page
MAX_UPLOAD_MB = 200  # keep in sync with .streamlit/config.toml server.maxUploadSize
MIN_CONF = 0.01  # lowest confidence the sliders offer; raw outputs are compacted at this level


# ---------------------------------------------------------------------------------------------
# the active model


@dataclass(frozen=True)
class ModelChoice:
    spec: str  # a path or an official name
    imgsz: int = DEFAULT_IMGSZ
    calib_dir: str = ""
    trust: bool = False
    threads: int = 0  # 0 = one per physical core

    @property
    def label(self) -> str:
        return Path(self.spec).name if os.sep in self.spec else self.spec


def default_choice() -> ModelChoice:
    return ModelChoice(spec=os.environ.get(ENV_MODEL, "yolov5n"), calib_dir=os.environ.get(ENV_CALIB, ""))


def model_choice() -> ModelChoice:
    if "model_choice" not in st.session_state:
        st.session_state.model_choice = default_choice()
    choice: ModelChoice = st.session_state.model_choice
    return choice


def set_model_choice(choice: ModelChoice) -> None:
    st.session_state.model_choice = choice


@st.cache_resource(show_spinner=False, max_entries=8)
def _store(spec: str, imgsz: int, calib_dir: str, trust: bool, cache_root: str) -> ModelStore:
    from core.sources import resolve_model

    source = resolve_model(spec, trust=trust)
    store = ModelStore(
        source, cache_root=Path(cache_root), imgsz=imgsz, calib_dir=Path(calib_dir) if calib_dir else None
    )
    store.info()  # export FP32 now, so every page can read names and sizes
    return store


def load_store(choice: ModelChoice, imgsz: int | None = None) -> ModelStore:
    """The store of ``choice``, loaded once per process and checked usable; raises CoreError if not.

    Anything else a damaged model file makes the converters raise becomes a CoreError too: a file a
    user gave must never surface as a traceback."""
    try:
        store = _store(choice.spec, imgsz or choice.imgsz, choice.calib_dir, choice.trust, str(cache_dir()))
        _ = store.input_size  # a fixed-size ONNX refuses another size here
        return store
    except CoreError:
        raise
    except Exception as exc:
        raise CoreError(f"{choice.label}: cannot be converted ({type(exc).__name__}: {exc})") from exc


def through_app_navigation() -> None:
    """Make sure this run goes through app.py's ``st.navigation``; call first thing on every page.

    Streamlit takes a ``pages/`` folder beside the main script for an old-style (v1) multipage app until
    some session has run ``st.navigation`` in this server process. Until then a first visitor who opens a
    page's URL directly gets that page run on its own: no shared sidebar, and every file of ``pages/``
    (this module too) listed as a page. Switching the flag and rerunning sends the run through app.py,
    which resolves the same URL to the same page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def active_store(show_errors: bool = True, imgsz: int | None = None) -> ModelStore | None:
    """The store of the active model (at ``imgsz`` if given), loaded once per process.

    An error is shown, never raised."""
    c = model_choice()
    try:
        with st.spinner(f"Preparing {c.label} (first time: export to ONNX)…"):
            return load_store(c, imgsz)
    except CoreError as exc:
        if show_errors:
            st.error(f"Model {c.label!r} cannot be used: {exc}")
            st.caption("Choose another model on the **Models** page (left).")
        return None


# ---------------------------------------------------------------------------------------------
# detectors: loaded once per process and shared by sessions (Detector is thread-safe)


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._detectors: dict[tuple[Any, ...], Detector] = {}

    def get(
        self, store: ModelStore, variant: Variant, threads: int, spin: bool, progress: Callable[[float, str], None]
    ) -> Detector:
        key = (str(store.directory), store.input_size, str(store.calib_dir), variant, threads, spin)
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:  # two sessions asking for the same variant build it once
            if key not in self._detectors:
                det = store.open_detector(variant, BackendOptions(threads=threads or None, spin=spin), progress)
                det.warmup(2)
                self._detectors[key] = det
            return self._detectors[key]

    def loaded(self) -> list[str]:
        with self._lock:
            return [str(k[3]) for k in self._detectors]

    def drop(self, store: ModelStore) -> None:
        """Forget the detectors of ``store``, e.g. after its cache was cleared.

        Not closed here: another session may be running one right now (a video job); each is freed when
        the last session holding it lets go."""
        with self._lock:
            for key in [k for k in self._detectors if k[0] == str(store.directory)]:
                del self._detectors[key]


def forget_detectors(store: ModelStore) -> None:
    _pool().drop(store)


@st.cache_resource(show_spinner=False)
def _pool() -> _Pool:
    return _Pool()


def open_detectors(
    store: ModelStore,
    variants: Sequence[Variant],
    threads: int | None = None,
    in_turn: bool = True,
    beside_other_work: bool = False,
) -> list[Detector] | None:
    """Detectors for ``variants``, building artefacts with a progress bar the first time.

    ``in_turn``: the variants will alternate call by call (comparisons, video), so CPU threads must not
    spin between calls (see BackendOptions.spin); a benchmark timing one variant at a time passes False.
    ``beside_other_work``: other threads need the cores between calls (video decode and encode): never spin.
    """
    threads = model_choice().threads if threads is None else threads
    spin = not beside_other_work and (not in_turn or len(variants) == 1)
    out = []
    bar = None
    for i, v in enumerate(variants):
        try:

            def report(f: float, msg: str, i: int = i, v: Variant = v) -> None:
                nonlocal bar
                bar = bar or st.progress(0.0, text="Preparing variants…")
                bar.progress(min((i + f) / len(variants), 1.0), text=f"{v}: {msg}")

            out.append(_pool().get(store, v, threads, spin, report))
        except CoreError as exc:
            st.error(f"{v} cannot run: {exc}")
            return None
    if bar is not None:
        bar.empty()
    return out


# ---------------------------------------------------------------------------------------------
# variant picker: every variant of the table, the ones that cannot run here disabled with the reason


@st.cache_data(show_spinner=False, ttl=600)
def _runtime_status() -> dict[str, tuple[bool, str]]:
    return {rt.value: (s.ok, s.reason) for rt in Runtime for s in [availability(rt)]}


def variant_status(v: Variant, store: ModelStore | None) -> Availability:
    ok, reason = _runtime_status()[v.runtime.value]
    if not ok:
        return Availability(False, reason)
    if v.precision is Precision.INT8 and (store is None or store.calib_dir is None):
        return Availability(False, "INT8 needs calibration images: set a folder on the Models page")
    return Availability(True)


def variant_picker(
    key: str, store: ModelStore | None, default: Sequence[str] = ("ort:fp32", "ort:int8"), max_count: int = 4
) -> list[Variant]:
    """A runtime x precision grid of checkboxes; returns the chosen, runnable variants in table order."""
    precisions = list(Precision)
    header = st.columns([2, 1, 1, 1])
    header[0].caption("runtime")
    for col, p in zip(header[1:], precisions, strict=True):
        col.caption(p.value.upper())
    chosen: list[Variant] = []
    reasons: dict[str, str] = {}
    for rt in Runtime:
        cols = st.columns([2, 1, 1, 1])
        cols[0].markdown(f"**{rt.label}**")
        for col, p in zip(cols[1:], precisions, strict=True):
            v = Variant(rt, p)
            if v not in VARIANTS:
                col.markdown("—")
                continue
            status = variant_status(v, store)
            if not status:
                reasons.setdefault(status.reason, str(v))
            picked = col.checkbox(
                str(v),
                value=str(v) in default and status.ok,
                key=f"{key}:{v}",
                disabled=not status.ok,
                help=status.reason or VARIANTS[v].note or None,
                label_visibility="collapsed",
            )
            if picked and status.ok:
                chosen.append(v)
    for reason, example in reasons.items():
        st.caption(f"Unavailable ({example} …): {reason}")
    if len(chosen) > max_count:
        st.warning(f"{len(chosen)} variants chosen; at most {max_count} fit side by side. Untick some.")
        st.stop()
    return chosen


def reference_picker(variants: Sequence[Variant], key: str) -> Variant:
    default = variants.index(REFERENCE) if REFERENCE in variants else 0
    picked: Variant = st.selectbox(
        "Reference variant (diffs are against it)", variants, index=default, key=key, format_func=str
    )
    return picked


def post_controls(names: Sequence[str], key: str) -> PostParams:
    c1, c2, c3 = st.columns([1, 1, 2])
    conf = c1.slider("Confidence", MIN_CONF, 1.0, 0.25, 0.01, key=f"{key}:conf")
    iou = c2.slider("NMS IoU", 0.05, 0.95, 0.45, 0.05, key=f"{key}:iou")
    picked = c3.multiselect("Only these classes", list(names), key=f"{key}:classes", placeholder="all classes")
    classes = tuple(names.index(n) for n in picked) or None
    return PostParams(conf=conf, iou=iou, classes=classes)


# ---------------------------------------------------------------------------------------------
# small helpers


def progress_callback(text: str) -> tuple[Callable[[float, str], None], Any]:
    bar = st.progress(0.0, text=text)

    def update(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{text} {message}")

    return update, bar


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def safe_name(name: str, limit: int = 80) -> str:
    """A user-given file name made safe to put in a path: last component only, no odd characters."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if dot and len(ext) <= 8:
        return f"{stem[: limit - len(ext) - 1]}.{ext}" if stem else f"file.{ext}"
    return base[:limit] or "file"


# Temporary files of each browser session live in <tmp>/yololab-<server pid>/<session id>/. Two layers
# remove them: the folder's owner in st.session_state deletes it when Streamlit drops the session
# state, and a janitor thread deletes the folders of sessions the server no longer knows (tab closed,
# connection lost) after a grace period, first stopping their video jobs. Streamlit keeps a
# disconnected session for 2 minutes in case it reconnects; the default grace is longer than that.
ENV_SESSION_GRACE = "YOLOLAB_SESSION_GRACE"  # seconds a session that went away keeps its files (default 300)
ENV_JANITOR_EVERY = "YOLOLAB_JANITOR_SECONDS"  # how often the janitor looks (default 30)
SESSIONS_PREFIX = "yololab-"
_SEP = "--"  # <session id>--<owner>: a session's folder name


def sessions_root(pid: int | None = None) -> Path:
    return Path(tempfile.gettempdir()) / f"{SESSIONS_PREFIX}{pid or os.getpid()}"


def _session_alive(session_id: str) -> bool:
    """Does the Streamlit server still know this session? True when there is no server (AppTest, scripts)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(session_id)


class _SessionDir:
    """Owns one session's folder (kept in st.session_state): removed when the session state is collected."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(path), True)

    def release(self) -> None:
        """Give up ownership without deleting (the folder is being handed to a new owner)."""
        self._finalizer.detach()


class Janitor:
    """Removes the temporary folders of sessions that ended, on a daemon thread; one per server process.

    ``alive(session_id)`` says whether a session is still there; a folder whose session has been gone
    for ``grace`` seconds is deleted, once the video jobs started from that session have stopped.
    """

    def __init__(
        self,
        root: Path,
        grace: float,
        every: float | None,
        alive: Callable[[str], bool] = _session_alive,
    ) -> None:
        self.root = root
        self.grace = grace
        self.alive = alive
        self._lock = threading.Lock()
        self._jobs: dict[str, list[VideoJob]] = {}
        self._gone_since: dict[str, float] = {}
        self.removed: list[str] = []  # session ids whose folder was removed (for tests and logs)
        self.root.mkdir(parents=True, exist_ok=True)
        _remove_dead_servers_folders()
        if every:
            threading.Thread(target=self._loop, args=(every,), name="yololab-janitor", daemon=True).start()

    def track(self, session_id: str, job: VideoJob) -> None:
        with self._lock:
            self._jobs.setdefault(session_id, []).append(job)

    def _loop(self, every: float) -> None:
        while True:
            time.sleep(every)
            try:
                self.sweep()
            except Exception:  # a janitor never takes the server down; it tries again next time
                logging.getLogger(__name__).exception("session janitor")

    def sweep(self, now: float | None = None) -> list[str]:
        """One pass; returns the session ids whose folders were removed."""
        now = time.monotonic() if now is None else now
        removed = []
        with self._lock:
            folders: dict[str, list[Path]] = {}
            for p in self.root.iterdir():
                if p.is_dir():
                    folders.setdefault(p.name.rsplit(_SEP, 1)[0], []).append(p)
            for sid in sorted(folders.keys() | self._jobs.keys()):
                if self.alive(sid):
                    self._gone_since.pop(sid, None)
                    continue
                if now - self._gone_since.setdefault(sid, now) < self.grace:
                    continue
                jobs = self._jobs.get(sid, [])
                for job in jobs:
                    job.stop()  # nobody is watching: stop at the next frame
                if any(job.running for job in jobs):
                    continue  # its output is still open: remove the folder next time
                for p in folders.get(sid, []):
                    shutil.rmtree(p, ignore_errors=True)
                self._jobs.pop(sid, None)
                self._gone_since.pop(sid, None)
                removed.append(sid)
        self.removed += removed
        return removed


def _remove_dead_servers_folders() -> None:
    """Folders left by server processes that no longer exist (killed, crashed)."""
    import psutil

    for p in Path(tempfile.gettempdir()).glob(f"{SESSIONS_PREFIX}*"):
        pid = p.name[len(SESSIONS_PREFIX) :]
        if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


@st.cache_resource(show_spinner=False)
def janitor() -> Janitor:
    return Janitor(
        sessions_root(),
        grace=float(os.environ.get(ENV_SESSION_GRACE, "300")),
        every=float(os.environ.get(ENV_JANITOR_EVERY, "30")),
    )


def session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if "session_id" not in st.session_state:
        st.session_state.session_id = ctx.session_id if ctx is not None else uuid.uuid4().hex
    sid: str = st.session_state.session_id
    return sid


def session_dir() -> Path:
    """A temporary folder for this browser session's uploads and results; removed when the session ends."""
    owner: _SessionDir | None = st.session_state.get("tmpdir")
    if owner is None or not owner.path.is_dir():  # first use, or removed while the session was away
        if owner is not None:
            owner.release()
        # unique per owner: a folder is only ever deleted by the owner that made it (or the janitor)
        owner = _SessionDir(janitor().root / f"{safe_name(session_id())}{_SEP}{uuid.uuid4().hex[:8]}")
        st.session_state.tmpdir = owner
    return owner.path


def track_job(job: VideoJob) -> None:
    """Let the janitor stop ``job`` if its session goes away."""
    janitor().track(safe_name(session_id()), job)


# ---------------------------------------------------------------------------------------------
# the session report: each page puts its latest results under its own key


def report_put(key: str, section: ReportSection) -> None:
    st.session_state.setdefault("report", {})[key] = section


def report_sections() -> dict[str, ReportSection]:
    sections: dict[str, ReportSection] = st.session_state.get("report", {})
    return sections


# ---------------------------------------------------------------------------------------------
# long video runs happen in a worker thread, so a Stop click (which reruns the script) never loses work


class VideoJob:
    """``core.video.process_video`` on a worker thread; the page polls it and draws the latest state."""

    RSS_WARM_FRAMES = 30

    def __init__(
        self,
        path: Path,
        name: str,
        detectors: Sequence[Detector],
        params: PostParams,
        output: Path,
        max_frames: int | None,
    ) -> None:
        import psutil

        self.name = name
        self.variants = [str(d.variant) for d in detectors]
        self._args = (path, detectors, params, output, max_frames)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.latest: Any = None  # the newest core.video.FrameUpdate
        self.latency: dict[str, list[float]] = {v: [] for v in self.variants}
        self.result: Any = None  # core.video.VideoRun when done
        self.error = ""
        self.rss_start_mb = psutil.Process().memory_info().rss / 2**20
        self.rss_warm_mb = 0.0  # after RSS_WARM_FRAMES: the runtimes' buffers are allocated by then
        self.rss_end_mb = 0.0
        self.thread = threading.Thread(target=self._run, name=f"video-job-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psutil

        from core.video import process_video

        path, detectors, params, output, max_frames = self._args
        try:
            self.result = process_video(
                path, detectors, params, output, max_frames, self._on_frame, self._stop.is_set, name=self.name
            )
        except CoreError as exc:  # core's messages about a file start with its name
            text = str(exc)
            self.error = text if text.startswith(f"{self.name}: ") else f"{self.name}: {text}"
        except Exception as exc:  # shown on the page; the app keeps running
            self.error = f"{self.name}: unexpected {type(exc).__name__}: {exc}"
        finally:
            self.rss_end_mb = psutil.Process().memory_info().rss / 2**20
            self.rss_warm_mb = self.rss_warm_mb or self.rss_end_mb

    def _on_frame(self, update: Any) -> None:
        if update.index + 1 == self.RSS_WARM_FRAMES:
            import psutil

            self.rss_warm_mb = psutil.Process().memory_info().rss / 2**20
        with self._lock:
            self.latest = update
            for v, ms in update.latency_ms.items():
                self.latency[v].append(ms)

    def snapshot(self) -> tuple[Any, dict[str, list[float]]]:
        with self._lock:
            return self.latest, {v: list(s) for v, s in self.latency.items()}

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()
