"""The Live page's plumbing: one live session per browser session, the browser's camera over WebRTC, a stream feed.

The browser's camera reaches the server through streamlit-webrtc (aiortc). Its worker hands
:meth:`LiveHolder.on_frames` every frame that arrived since the last call: the newest is processed, the others are
counted as dropped, so the view never lags behind by a queue. No STUN/TURN server is used unless the operator names
one in ``$YOLOLAB_ICE_SERVERS`` (JSON, e.g. ``[{"urls": ["stun:stun.example.org:3478"]}]``): on localhost and on
a LAN the browser and the server reach each other directly, and nothing is sent to a third party.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import streamlit as st

from core.runtime import Detector, PostParams
from core.video import LiveFeed, LiveSession, Recording, StreamSource

ENV_ICE_SERVERS = "YOLOLAB_ICE_SERVERS"
_HOLDER = "live:holder"


def ice_servers() -> list[dict[str, Any]]:
    """The ICE servers the operator configured (none by default); a malformed value is an error on the page."""
    raw = os.environ.get(ENV_ICE_SERVERS, "").strip()
    if not raw:
        return []
    servers = json.loads(raw)
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise ValueError(f"${ENV_ICE_SERVERS} must be a JSON list of objects with 'urls', got {raw[:120]!r}")
    return servers


class LiveHolder:
    """This browser session's live session (one at a time) and, for a stream, its feed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.session: LiveSession | None = None
        self.key: tuple[Any, ...] = ()
        self.feed: LiveFeed | None = None
        self.finished: Recording | None = None  # a recording closed by the camera stopping
        self._watchdog: threading.Thread | None = None

    def ensure(self, detectors: Sequence[Detector], params: PostParams, key: tuple[Any, ...]) -> LiveSession:
        """The live session for these variants and settings: the current one, or a new one when they changed
        (a recording in progress ends with the old settings)."""
        with self._lock:
            if self.session is None or key != self.key:
                old = self.session
                self.session, self.key = LiveSession(detectors, params), key
                if old is not None and (done := old.close()) is not None:
                    self.finished = done
            return self.session

    async def on_frames(self, frames: list[Any]) -> list[Any]:
        """streamlit-webrtc's queued-frames callback (its worker thread): process the newest, drop the rest."""
        import av

        session = self.session
        if session is None or session.closed or not frames:
            return frames[-1:]
        view = session.process(frames[-1].to_ndarray(format="rgb24"), skipped=len(frames) - 1)
        return [av.VideoFrame.from_ndarray(view, format="rgb24")]

    def on_ended(self) -> None:
        """The camera stopped (Stop pressed, or the tab went away): a recording in progress is finished."""
        session = self.session
        if session is not None and session.recording and (done := session.stop_recording()) is not None:
            self.finished = done

    def watch(self, ctx: Any, alive: Any) -> None:
        """While the camera runs, check every second that this browser session is still connected; when the tab
        has gone, stop the camera's WebRTC worker (its peer connection, tracks and threads) and end the live
        session at once. (Streamlit keeps a closed tab's session for a while in case it reconnects; streamlit-webrtc
        would keep the camera running until then.)"""
        if self._watchdog is not None and self._watchdog.is_alive():
            return

        def run() -> None:
            while True:
                time.sleep(1.0)
                worker = ctx._get_worker()  # streamlit-webrtc <0.80: the worker behind this widget, None once stopped
                if worker is None:
                    return
                if not alive():
                    worker.stop()
                    self.on_ended()
                    if self.session is not None:
                        self.session.close()
                    return

        self._watchdog = threading.Thread(target=run, name="live-watchdog", daemon=True)
        self._watchdog.start()

    def start_feed(self, url: str, alive: Any) -> LiveFeed:
        self.stop_feed()
        assert self.session is not None
        self.feed = LiveFeed(StreamSource(url), self.session, alive).start()
        return self.feed

    def stop_feed(self) -> None:
        if self.feed is not None:
            self.feed.stop()
            self.feed = None


def holder() -> LiveHolder:
    """This browser session's holder (kept in its session state, gone with it)."""
    found = st.session_state.get(_HOLDER)
    if found is None:
        found = st.session_state[_HOLDER] = LiveHolder()
    return found


def session_alive() -> Any:
    """A callable that says whether this browser session is still connected (for threads that must stop with it)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from ui.persist import any_active

    ctx = get_script_run_ctx()
    sid = ctx.session_id if ctx is not None else ""
    return lambda: any_active([sid])


def camera(h: LiveHolder, key: str) -> Any:
    """The WebRTC widget: the browser's camera in, the side-by-side view out; its context."""
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    config = {"iceServers": ice_servers()}
    return webrtc_streamer(
        key=key,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=config,  # the browser's and the server's: no third-party STUN unless configured
        media_stream_constraints={"video": True, "audio": False},
        queued_video_frames_callback=h.on_frames,
        on_video_ended=h.on_ended,
        async_processing=True,
        sendback_audio=False,
        video_html_attrs={"autoPlay": True, "controls": False, "muted": True, "style": {"width": "100%"}},
    )
