"""What results look like: variant colours, annotated pictures, charts, and the self-contained HTML report."""

from __future__ import annotations

from core.report.charts import (
    LATENCY_AXIS,
    compare_latency,
    figure,
    latency_distribution,
    per_class_ap,
    speed_vs_accuracy,
    stage_split,
    throughput,
    video_latency,
)
from core.report.colours import hex_to_rgb, variant_colour
from core.report.draw import MAX_TILES, annotate, annotate_diff, save_images, side_by_side
from core.report.from_json import load_results, profile_section, sections_from_results, system_of
from core.report.html import ReportSection, render_html

__all__ = [
    "LATENCY_AXIS",
    "MAX_TILES",
    "ReportSection",
    "annotate",
    "annotate_diff",
    "compare_latency",
    "figure",
    "hex_to_rgb",
    "latency_distribution",
    "load_results",
    "per_class_ap",
    "profile_section",
    "render_html",
    "save_images",
    "sections_from_results",
    "side_by_side",
    "speed_vs_accuracy",
    "stage_split",
    "system_of",
    "throughput",
    "variant_colour",
    "video_latency",
]
