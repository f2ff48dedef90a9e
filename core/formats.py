"""The file types the tool accepts, in one place: what uploads offer, what folders are scanned for.

``*_TYPES`` are bare extensions (file uploaders, messages); ``*_SUFFIXES`` are ``Path.suffix`` values
(folder scans). The image sets differ on purpose, per use: single images (uploads) are the formats
browsers show; image folders (calibration sets, datasets) also take TIFF; the project's own samples
are JPEG and PNG only.
"""

from __future__ import annotations

IMAGE_TYPES = ("jpg", "jpeg", "png", "webp", "bmp")  # single images: uploads, core.data.images' messages
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # image folders: calibration, datasets
SAMPLE_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # the project's sample images (assets/samples)

VIDEO_TYPES = ("mp4", "mov", "avi", "mkv", "webm")  # uploads, core.video's messages
VIDEO_SUFFIXES = tuple(f".{t}" for t in VIDEO_TYPES)  # sample clip folders
