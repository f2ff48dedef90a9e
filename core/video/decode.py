"""Probe a user's video and decode its frames upright: the demuxer allow-list, rotation, damaged files.

Decoding uses PyAV (FFmpeg). Only the demuxers in :data:`_DEMUXERS` may open a user's file, local files
only; a damaged or truncated file yields the frames that decode, and one clear :class:`InputError` when
nothing does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError
from core.formats import VIDEO_TYPES

# FFmpeg demuxers allowed to open a user's file (names match any alias: "mov" is the mp4/mov/m4v demuxer,
# "matroska" also reads webm). Everything else is refused before it parses anything: playlists (hls,
# concat) that would make FFmpeg open other files or URLs, image sequences, raw streams.
_DEMUXERS = "mov,matroska,avi"
_OPEN_OPTIONS = {"format_whitelist": _DEMUXERS, "protocol_whitelist": "file"}
MAX_VIDEO_PIXELS = 8192 * 4320  # per frame; larger (8K+) videos are refused before decoding
# Consecutive packets that fail to decode before a stream is treated as damaged beyond that point.
_MAX_BAD_PACKETS = 25


def _accepted() -> str:
    return f"accepted: {', '.join(VIDEO_TYPES)}"


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds. ``width``/``height`` are the upright picture's, as players show it."""

    path: Path
    width: int
    height: int
    coded_width: int  # as stored, before rotation
    coded_height: int
    fps: float  # average frame rate (frames / duration for variable frame rate)
    frame_rate: Fraction  # the same, exact, for encoders
    frame_count: int
    frame_count_estimated: bool  # the container does not say; duration x fps
    duration: float  # seconds
    rotation: int  # 0, 90, 180 or 270: counter-clockwise turn applied to the stored picture for display
    has_audio: bool
    codec: str
    container: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 3),
            "frames": self.frame_count,
            "frames_estimated": self.frame_count_estimated,
            "duration_s": round(self.duration, 3),
            "rotation": self.rotation,
            "has_audio": self.has_audio,
            "codec": self.codec,
            "container": self.container,
        }


def _label(path: Path, name: str | None) -> str:
    return name or path.name


def _open(path: Path, label: str) -> tuple[Any, Any]:
    """Open a user's video with the demuxer whitelist; return (container, video stream) or raise InputError."""
    import av

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{label}: cannot open ({exc.strerror or exc})") from exc
    if path.is_dir():
        raise InputError(f"{label}: is a folder, not a video file ({_accepted()})")
    if size == 0:
        raise InputError(f"{label}: empty file (0 bytes; {_accepted()})")
    try:
        container = av.open(str(path), options=_OPEN_OPTIONS)
    except av.error.FFmpegError as exc:
        with open(path, "rb") as fp:
            head = fp.read(12)
        if head[4:8] == b"ftyp":  # an MP4/MOV whose index (moov box) is missing, usually a cut-off download
            raise InputError(
                f"{label}: damaged or truncated MP4/MOV, its index cannot be read ({_accepted()})"
            ) from exc
        raise InputError(f"{label}: not a video file in an accepted format ({_accepted()})") from exc
    try:
        # Cover art in audio files is a one-picture "video" stream; it is not a video.
        streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            raise InputError(f"{label}: has no video stream (audio only?) ({_accepted()})")
        stream = streams[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        if w * h > MAX_VIDEO_PIXELS:
            raise InputError(
                f"{label}: {w}x{h} frames are over the limit of {MAX_VIDEO_PIXELS / 1e6:.0f} megapixels per frame"
            )
    except BaseException:
        container.close()
        raise
    return container, stream


def _rotation_k(frame: Any) -> int:
    """Quarter turns counter-clockwise (np.rot90's k) that make a decoded frame upright.

    FFmpeg's display matrix angle is the counter-clockwise rotation to apply for display (a phone held
    upright records -90: turn clockwise). Angles that are not multiples of 90 are rounded.
    """
    try:
        angle = float(frame.rotation or 0.0)
    except (TypeError, ValueError):  # a malformed display matrix: show the picture as stored
        return 0
    return round(angle / 90.0) % 4


def _to_rgb(frame: Any) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    k = _rotation_k(frame)
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _av_frames(container: Any, stream: Any, label: str, damage: list[str]) -> Iterator[Any]:
    """Decoded frames of ``stream``. Where the container is cut off or damaged, the decoder is flushed
    (it holds frames back for reordering) and the stream ends, with a note in ``damage``."""
    import av

    packets = container.demux(stream)
    count = 0
    bad = 0
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return  # demux() ends with an empty packet per stream, which flushed the decoder
        except av.error.FFmpegError:
            # FFmpeg's own text ("[Errno 1094995529] Invalid data ...") means nothing to a user: left out
            damage.append(f"{label}: the file is cut off or damaged after frame {count}")
            packet = None  # flush what the decoder holds
        try:
            frames = stream.decode(packet)
        except av.error.FFmpegError:
            bad += 1
            if packet is None or bad > _MAX_BAD_PACKETS:
                if packet is not None:
                    damage.append(f"{label}: undecodable data after frame {count} (the file is damaged)")
                return
            continue  # one bad packet (a damaged frame): carry on with the next ones
        bad = 0
        for frame in frames:
            yield frame
            count += 1
        if packet is None:
            return


def _seconds(frame: Any) -> Fraction | None:
    """A decoded frame's presentation time in seconds, exact (pts x time base), or None if it has none."""
    if frame.pts is None or frame.time_base is None:
        return None
    return frame.pts * Fraction(frame.time_base)


def _stream_end(stream: Any) -> Fraction | None:
    """When the stream's last frame stops showing (start + duration, seconds), if the container says."""
    if stream.duration is None or stream.time_base is None:
        return None
    return (int(stream.start_time or 0) + stream.duration) * Fraction(stream.time_base)


def _decode_timed(
    path: Path, label: str, max_frames: int | None, damage: list[str]
) -> Iterator[tuple[np.ndarray, Fraction, Fraction]]:
    """Upright RGB frames with their presentation time and display duration, in seconds from the first frame.

    Times are the source's own (pts x time base), so a variable-frame-rate clip keeps its rhythm. A frame's
    duration is the gap to the next one, which is decoded first (one frame of look-ahead); the last frame's
    is the rest of the stream, or one average frame where the container does not say or is cut off. A frame
    without a timestamp, or one not after the previous (a damaged file), comes one average frame later.
    A cut-off or damaged file ends early (see _av_frames), InputError if no frame decodes.
    """
    container, stream = _open(path, label)
    count = 0
    try:
        # Slice threads only: frame threading buffers frames per thread (memory, latency) and competes
        # with inference for the same cores.
        stream.thread_type = "SLICE"
        step = 1 / _frame_rate(stream, 0.0)  # one average frame
        start = Fraction(0)
        held: tuple[Any, Fraction] | None = None  # decoded, waiting for the next frame's time
        for frame in _av_frames(container, stream, label, damage):
            if max_frames is not None and max_frames < 1:
                break
            t = _seconds(frame)
            if held is None:
                start = t if t is not None else Fraction(0)
                t = start
            elif t is None or t <= held[1]:
                t = held[1] + step
            if held is not None:
                yield _to_rgb(held[0]), held[1] - start, t - held[1]
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
            held = (frame, t)
        if held is not None:
            end = _stream_end(stream)
            rest = end - held[1] if end is not None else None
            yield _to_rgb(held[0]), held[1] - start, rest if rest is not None and 0 < rest <= 4 * step else step
            count += 1
    finally:
        container.close()
    if count == 0:
        raise InputError(f"{label}: no frame could be decoded, the file is damaged ({_accepted()})")


def _decode(path: Path, label: str, max_frames: int | None, damage: list[str]) -> Iterator[np.ndarray]:
    """Upright RGB frames; a cut-off or damaged file ends early (see _av_frames), InputError if no frame decodes."""
    for rgb, _, _ in _decode_timed(path, label, max_frames, damage):
        yield rgb


def iter_frames(path: str | Path, max_frames: int | None = None, name: str | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 HxWx3 frames as a player shows them (rotation metadata applied).

    A damaged or truncated file yields the frames that decode and stops; InputError only if none does.
    ``name`` is used in messages instead of the file name (e.g. the name of an uploaded file).
    """
    path = Path(path)
    return _decode(path, _label(path, name), max_frames, [])


def probe(path: str | Path, name: str | None = None) -> VideoInfo:
    """Read a video's facts and decode its first frame (to prove it decodes and to read its rotation)."""
    import av

    path = Path(path)
    label = _label(path, name)
    container, stream = _open(path, label)
    try:
        damage: list[str] = []
        first = next(_av_frames(container, stream, label, damage), None)
        if first is None:
            raise InputError(f"{label}: no frame could be decoded, the file is damaged ({_accepted()})")
        k = _rotation_k(first)

        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        rate = _frame_rate(stream, duration)
        frames = int(stream.frames or 0)
        estimated = frames <= 0
        if estimated:
            frames = max(1, round(duration * float(rate))) if duration > 0 else 0
        cw, ch = stream.codec_context.width, stream.codec_context.height
        w, h = (ch, cw) if k % 2 else (cw, ch)
        return VideoInfo(
            path=path,
            width=w,
            height=h,
            coded_width=cw,
            coded_height=ch,
            fps=float(rate),
            frame_rate=rate,
            frame_count=frames,
            frame_count_estimated=estimated,
            duration=duration,
            rotation=(k * 90) % 360,
            has_audio=len(container.streams.audio) > 0,
            codec=stream.codec_context.name,
            container=container.format.name,
        )
    finally:
        container.close()


def _frame_rate(stream: Any, duration: float) -> Fraction:
    """Average frame rate: the container's (frames / duration, right for variable frame rate), else guesses."""
    for candidate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if candidate and 0 < float(candidate) <= 1000:
            return Fraction(candidate).limit_denominator(1001)
    if stream.frames and duration > 0:
        return Fraction(stream.frames / duration).limit_denominator(1001)
    return Fraction(25)  # nothing says: the most common broadcast rate, only used to time the output
