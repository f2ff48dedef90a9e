"""An operator's camera stream (RTSP, HTTP(S)) as a live source: connect with a timeout, keep only the newest
frame, reconnect when it drops, and say in one line why it cannot be read.

:class:`StreamSource` reads on its own thread with PyAV (FFmpeg); :class:`LiveFeed` runs a
:class:`~core.video.live.LiveSession` on the newest frame of a source on another thread, counting the frames that
arrived while the variants were busy as dropped — nothing queues, so the view is at most one frame behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from core.errors import InputError
from core.video.live import LiveSession

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
CONNECT_TIMEOUT_S = 8.0
READ_TIMEOUT_S = 8.0
RECONNECT_DELAYS_S = (1.0, 2.0, 4.0, 8.0)  # then every 8 s until stopped


def check_url(url: str) -> str:
    """The URL, stripped, or InputError naming what is accepted."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in STREAM_SCHEMES or not parts.netloc:
        raise InputError(
            f"not a camera stream address: {url[:120]!r}; accepted: {', '.join(s + '://' for s in STREAM_SCHEMES)}"
            "host[:port]/path (e.g. rtsp://192.168.1.20:554/stream1)"
        )
    return url


def _shown(url: str) -> str:
    """The URL without a password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


@dataclass(frozen=True)
class StreamState:
    connected: bool
    frames: int  # decoded since the source started
    reconnects: int
    error: str  # the last problem, "" if none
    failed: bool  # it never connected (the first try failed): the page shows the error and stops


class StreamSource:
    """Decodes a stream on a daemon thread, keeping only the newest frame (RGB) and its sequence number."""

    def __init__(self, url: str, *, connect_timeout: float = CONNECT_TIMEOUT_S,
                 read_timeout: float = READ_TIMEOUT_S, reconnect: bool = True) -> None:  # fmt: skip
        self.url = check_url(url)
        self.shown = _shown(self.url)
        self.connect_timeout, self.read_timeout, self.reconnect = connect_timeout, read_timeout, reconnect
        self._lock = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._connected = False
        self._ever = False
        self._reconnects = 0
        self._error = ""
        self._failed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-stream", daemon=True)

    def start(self) -> StreamSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._thread.join(timeout=self.read_timeout + 2)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def state(self) -> StreamState:
        with self._lock:
            return StreamState(self._connected, self._seq, self._reconnects, self._error, self._failed)

    def newest(self, after: int, timeout: float) -> tuple[np.ndarray | None, int]:
        """The newest frame if its number is above ``after`` (waiting up to ``timeout`` s), and its number."""
        with self._lock:
            self._lock.wait_for(lambda: self._seq > after or self._stop.is_set() or self._failed, timeout)
            return (self._frame, self._seq) if self._seq > after else (None, self._seq)

    def _run(self) -> None:
        delays = iter(RECONNECT_DELAYS_S)
        while not self._stop.is_set():
            try:
                self._read_once()
                problem = f"{self.shown}: the stream ended"
            except Exception as exc:  # FFmpeg's errors: refused, timed out, not found, unsupported codec...
                problem = f"{self.shown}: {_why(exc).replace(self.url, self.shown)}"
            with self._lock:
                self._connected = False
                self._error = problem
                if not self._ever:
                    self._failed = True
                    self._lock.notify_all()
            if not self._ever or not self.reconnect:
                return
            if self._stop.wait(next(delays, RECONNECT_DELAYS_S[-1])):
                return
            with self._lock:
                self._reconnects += 1

    def _read_once(self) -> None:
        import av

        from core.video.decode import _to_rgb

        options = {"rtsp_transport": "tcp"} if self.url.lower().startswith("rtsp") else {}
        container = av.open(self.url, options=options, timeout=(self.connect_timeout, self.read_timeout))
        try:
            if not container.streams.video:
                raise InputError("no video in this stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            with self._lock:
                self._connected, self._ever, self._error = True, True, ""
            began: tuple[float, float] | None = None  # (the first frame's time in the stream, on our clock)
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return
                # a recorded file served over HTTP plays at its own pace, as a camera would (a live stream is
                # paced by its camera already: this never waits there)
                if frame.time is not None:
                    began = began or (float(frame.time), time.monotonic())
                    ahead = (float(frame.time) - began[0]) - (time.monotonic() - began[1])
                    if ahead > 0 and self._stop.wait(min(ahead, 1.0)):
                        return
                rgb = _to_rgb(frame)
                with self._lock:
                    self._frame = rgb
                    self._seq += 1
                    self._lock.notify_all()
        finally:
            container.close()


class LiveFeed:
    """A :class:`LiveSession` fed the newest frame of a :class:`StreamSource` on a daemon thread."""

    def __init__(self, source: StreamSource, session: LiveSession,
                 alive: Callable[[], bool] | None = None) -> None:  # fmt: skip
        """``alive()``: polled every second; when it says False (the browser tab went away) the feed stops."""
        self.source = source
        self.session = session
        self.alive = alive or (lambda: True)
        self.error = ""  # an engine failure, in one line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)

    def start(self) -> LiveFeed:
        self.source.start()
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self.source.stop()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        seen = 0
        checked = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() - checked > 1.0:
                    checked = time.monotonic()
                    if not self.alive():
                        break
                frame, seq = self.source.newest(seen, timeout=0.5)
                if self.source.state().failed:
                    break
                if frame is None:
                    continue
                self.session.process(frame, skipped=max(0, seq - seen - 1))
                seen = seq
        except Exception as exc:  # shown on the page; the server goes on
            self.error = _why(exc)
        finally:
            self.source._stop.set()
