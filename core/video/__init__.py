"""Videos: probe, decode upright RGB frames, run variants side by side, encode browser-playable H.264.

- :mod:`.decode`: the demuxer allow-list, :func:`probe` (:class:`VideoInfo`) and :func:`iter_frames`
- :mod:`.writer`: :class:`H264Writer`, an atomic, browser-playable MP4; :func:`slowed_copy` (slow motion)
- :mod:`.pipeline`: :func:`process_video` (threads, :class:`FrameUpdate`, :class:`VideoRun` and its CSV)
- :mod:`.job`: :class:`VideoJob`, ``process_video`` on a worker thread for a UI to poll
- :mod:`.live`: :class:`LiveSession`, variants on the newest camera frame, dropped frames counted, recording
- :mod:`.stream`: :class:`StreamSource` (an RTSP / HTTP camera: timeout, reconnection) and :class:`LiveFeed`

The side-by-side picture is drawn by :func:`core.report.draw.side_by_side`.
"""

from __future__ import annotations

from core.formats import VIDEO_SUFFIXES, VIDEO_TYPES
from core.video.decode import MAX_VIDEO_PIXELS, VideoInfo, iter_frames, probe
from core.video.demo import DEMO_CLIP, demo_clip
from core.video.job import VideoJob
from core.video.live import LiveSession, LiveStatus, Recording
from core.video.pipeline import (
    BACKGROUND_NICE,
    CSV_COLUMNS,
    DECODE_QUEUE,
    ENCODE_QUEUE,
    MAX_OUTPUT_SIZE,
    MAX_VARIANTS,
    PIPELINE_PRESET,
    FrameUpdate,
    VideoRun,
    latency_table,
    process_video,
)
from core.video.stream import STREAM_SCHEMES, LiveFeed, StreamSource, check_url
from core.video.writer import H264Writer, slowed_copy

__all__ = [
    "BACKGROUND_NICE",
    "CSV_COLUMNS",
    "DECODE_QUEUE",
    "DEMO_CLIP",
    "ENCODE_QUEUE",
    "MAX_OUTPUT_SIZE",
    "MAX_VARIANTS",
    "MAX_VIDEO_PIXELS",
    "PIPELINE_PRESET",
    "STREAM_SCHEMES",
    "VIDEO_SUFFIXES",
    "VIDEO_TYPES",
    "FrameUpdate",
    "H264Writer",
    "LiveFeed",
    "LiveSession",
    "LiveStatus",
    "Recording",
    "StreamSource",
    "VideoInfo",
    "VideoJob",
    "VideoRun",
    "check_url",
    "demo_clip",
    "iter_frames",
    "latency_table",
    "probe",
    "process_video",
    "slowed_copy",
]
