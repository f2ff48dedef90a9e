"""Encode RGB frames as a browser-playable H.264 MP4, written atomically.

Encoding uses PyAV (FFmpeg). OpenCV's pip wheels cannot write H.264, and H.264 in an MP4 with
``+faststart`` is what every browser plays and streams.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

# The output's time base: frames keep their own times to within 1/90000 s (MPEG's clock; every common frame
# rate, 24, 25, 30, 50, 60 and the NTSC 1000/1001 ones, is a whole number of ticks).
TIME_BASE = Fraction(1, 90000)


class H264Writer:
    """Write RGB frames as a browser-playable MP4 (H.264, yuv420p, ``+faststart``), atomically.

    Frames go to a temporary file beside ``path`` that is renamed onto ``path`` by :meth:`close`, so a
    crash never leaves a half-written file under the final name. Odd sizes are padded to even
    (yuv420p needs even), repeating the last row/column. Used as a context manager, an exception in
    the block discards the file; a normal exit keeps every frame written so far.

    Each frame is shown at its ``time`` and for its ``duration`` (seconds; :meth:`write`), in ticks of
    :data:`TIME_BASE`, so a variable-frame-rate source keeps its timing. Without them frames follow each
    other at ``fps``, which is also the average rate the file announces.
    (Where x264's last packet in decoding order is a B-frame, FFmpeg may read the last frame as shorter
    than its duration: MP4 samples end at the last decoding time + duration.)
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        width: int,
        height: int,
        *,
        crf: int = 23,
        preset: str = "veryfast",
        threads: int = 1,
    ) -> None:
        import av

        if width < 1 or height < 1:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        if rate <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.width, self.height = width, height
        self.frames = 0
        self._step = rate  # frames per second when a frame comes without its time or duration
        self._next = 0  # where the next frame starts when it comes without a time (ticks)
        self._last: int | None = None  # the last frame's pts
        # pts -> display duration (ticks), set on its packet when muxed: the MP4's edit list ends at the latest
        # pts + duration (FFmpeg's muxer), so every frame's duration counts, the last one's most
        self._durations: dict[int, int] = {}
        self._result: Path | None = None
        self._pad = (height % 2, width % 2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        # format= because the temporary name has no .mp4 suffix to choose the muxer by.
        self._container: Any = av.open(str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"})
        try:
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = width + self._pad[1], height + self._pad[0]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = stream.time_base = TIME_BASE  # rate stays the announced rate
            stream.options = {"crf": str(crf), "preset": preset}
            # One encoder thread: the encode thread already overlaps with inference, more threads only
            # take cores from it. x264 frame threads would also add frames of delay.
            stream.codec_context.thread_count = threads
            self._stream = stream
        except BaseException:
            self.abort()
            raise

    def write(
        self, rgb: np.ndarray, time: float | Fraction | None = None, duration: float | Fraction | None = None
    ) -> None:
        """Add a frame shown from ``time`` for ``duration`` seconds (from the start of the video).

        Without ``time`` the frame follows the previous one; without ``duration`` it lasts one frame at the
        writer's ``fps``. Times that do not increase (a damaged source) are moved one tick after the last.
        """
        import av

        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected a {self.height}x{self.width}x3 uint8 frame, got {rgb.shape} {rgb.dtype}")
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        pts = self._next if time is None else _ticks(time)
        if self._last is not None and pts <= self._last:
            pts = self._last + 1
        length = _ticks(duration) if duration is not None else 0
        if length < 1:
            length = max(1, _ticks(1 / self._step))
        if self._last in self._durations:  # a frame shows until the next one starts
            self._durations[self._last] = min(self._durations[self._last], pts - self._last)
        self._durations[pts] = length
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = pts, TIME_BASE
        self._last, self._next = pts, pts + length
        self._mux(self._stream.encode(frame))
        self.frames += 1

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            if packet.pts is not None:
                packet.duration = self._durations.pop(packet.pts, 0)
        self._container.mux(packets)

    def close(self) -> Path | None:
        """Flush, finish the MP4 and move it onto ``path``. Returns the path, or None if no frame was written."""
        if self._container is None:  # closed or aborted already
            return self._result
        if self.frames == 0:
            self.abort()
            return None
        try:
            self._mux(self._stream.encode(None))
            self._container.close()  # writes the index and, with +faststart, moves it to the front
        except BaseException:
            self.abort()
            raise
        self._container = None
        os.replace(self._tmp, self.path)
        self._result = self.path
        return self.path

    def abort(self) -> None:
        """Discard everything: nothing is left at ``path`` (an older file there is untouched)."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _ticks(seconds: float | Fraction) -> int:
    """Seconds in :data:`TIME_BASE` ticks, to the nearest."""
    return round(Fraction(seconds) / TIME_BASE)


def slowed_copy(src: str | Path, dst: str | Path, factor: int = 4) -> Path:
    """``src`` played ``factor`` times slower, for watching boxes flicker: its packets are muxed again with
    stretched timestamps (no re-encode, so it takes a moment even for a long clip). Written atomically."""
    import av

    if factor < 1:
        raise ValueError(f"factor must be at least 1, got {factor}")
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = inp.streams.video[0]
            copy = out.add_stream_from_template(stream)
            copy.time_base = stream.time_base
            for packet in inp.demux(stream):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.pts = None if packet.pts is None else packet.pts * factor
                packet.dts *= factor
                packet.duration *= factor
                packet.stream = copy
                out.mux(packet)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst
