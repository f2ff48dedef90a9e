"""Inputs: images (decoded safely), zip archives, the sample pictures, labelled YOLO-format sets (as users have
them: flat folders, the ultralytics split layout, data.yaml, zips)."""

from __future__ import annotations

from core.data.archive import MAX_UNPACKED_BYTES, dataset_root, extract_zip
from core.data.dataset import (
    MIN_PAIRED,
    DatasetInventory,
    LabelledImage,
    YoloDataset,
    labels_to_xyxy,
    load_dataset,
    names_mismatch,
)
from core.data.images import IMAGE_TYPES, load_image
from core.data.layout import resolve_layout
from core.data.samples import PROJECT_SAMPLES, default_sample, sample_image, sample_images, sample_videos

__all__ = [
    "IMAGE_TYPES",
    "MAX_UNPACKED_BYTES",
    "MIN_PAIRED",
    "PROJECT_SAMPLES",
    "DatasetInventory",
    "LabelledImage",
    "YoloDataset",
    "dataset_root",
    "default_sample",
    "extract_zip",
    "labels_to_xyxy",
    "load_dataset",
    "load_image",
    "names_mismatch",
    "resolve_layout",
    "sample_image",
    "sample_images",
    "sample_videos",
]
