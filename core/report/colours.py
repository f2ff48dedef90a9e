"""Colours that mean the same thing everywhere: one per variant (charts, video captions, the report), one per
pipeline stage. A variant's colour comes from its row in the variant table, never from what else is shown."""

from __future__ import annotations

import hashlib

from core.variants import VARIANTS, Variant

# Distinct on a projector and for the common colour-vision deficiencies; no green / red / amber, which the
# diff images use for matched / missed / extra boxes.
_VARIANT_PALETTE = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#9467bd",  # purple
    "#17becf",  # cyan
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#7f7f7f",  # grey
    "#bcbd22",  # olive
    "#393b79",  # navy
    "#ad494a",  # brick
    "#637939",  # moss
    "#7b4173",  # plum
    "#5254a3",  # indigo
    "#9c9ede",  # lavender
    "#be185d",  # raspberry
    "#0369a1",  # sky
    "#6d28d9",  # violet
    "#a21caf",  # fuchsia
    "#57534e",  # stone
    "#0f766e",  # deep teal
)
VARIANT_COLOURS: dict[str, str] = {str(v): _VARIANT_PALETTE[i % len(_VARIANT_PALETTE)] for i, v in enumerate(VARIANTS)}
# Saved INT8 recipes (ort:int8@NAME) and variants on cluster nodes (gpu-box/trt:fp16): one of these, by the
# name's hash, so each keeps its colour everywhere.
_RECIPE_PALETTE = ("#6b6ecf", "#e7969c", "#843c39", "#de9ed6", "#8ca252", "#3182bd")
OTHER = "#4b5563"  # a name that is not a variant (e.g. a peer runtime in a bench script)

STAGE_COLOURS = {"preprocess": "#94a3b8", "inference": "#2563eb", "postprocess": "#f59e0b"}


def variant_colour(variant: Variant | str) -> str:
    name = str(variant)
    base = name.rpartition("/")[2].partition("@")[0]
    if name != base and base in VARIANT_COLOURS:  # a recipe or a cluster node: its own colour, by name
        digest = hashlib.sha256(name.encode()).digest()
        return _RECIPE_PALETTE[digest[0] % len(_RECIPE_PALETTE)]
    return VARIANT_COLOURS.get(name, OTHER)


def colour_map(variants: list[str] | tuple[str, ...]) -> dict[str, str]:
    """For Plotly Express's ``color_discrete_map``."""
    return {v: variant_colour(v) for v in variants}


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
