"""A model's files: where a model comes from (sources, download), conversion to FP16 / INT8, the artefact
store, and the saved INT8 recipes.
"""

from __future__ import annotations

from core.model.convert import CalibrationMethod, Int8Options, list_images
from core.model.recipes import Recipe, describe_options, recipe_variant
from core.model.sources import ModelSource, SourceKind, SourceOrigin, resolve_model
from core.model.store import (
    NEEDS_CALIBRATION,
    ModelStore,
    RemoteOpener,
    open_store,
    recipe_rows,
    register_remote_opener,
)

__all__ = [
    "NEEDS_CALIBRATION",
    "CalibrationMethod",
    "Int8Options",
    "ModelSource",
    "ModelStore",
    "Recipe",
    "RemoteOpener",
    "SourceKind",
    "SourceOrigin",
    "describe_options",
    "list_images",
    "open_store",
    "recipe_rows",
    "recipe_variant",
    "register_remote_opener",
    "resolve_model",
]
