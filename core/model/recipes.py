"""INT8 recipes: named sets of quantization settings, saved with a model's artefacts, run as ``ort:int8@NAME``.

A recipe is everything that changes an INT8 file (:class:`core.model.convert.Int8Options`: flavour, calibration
method and size, blocks kept in float, per-channel, weight bits) plus the calibration folder it was made
with. Its file is built and cached like every artefact (content hash of settings + calibration images), so
a recipe costs one build the first time it runs and nothing after. Recipes live in
``<model's cache folder>/recipes/NAME.json``: one small JSON each, readable and diffable.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.model.convert import CalibrationMethod, Int8Options
from core.variants import Int8Flavour, check_recipe_name

SCHEMA = 1


@dataclass(frozen=True)
class Recipe:
    name: str
    options: Int8Options
    calib_dir: str  # the calibration folder the ranges come from (absolute)
    note: str = ""  # how it came to be, e.g. the search target and its report-split figures
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    def __post_init__(self) -> None:
        check_recipe_name(self.name)

    @property
    def flavour(self) -> Int8Flavour:
        return self.options.flavour

    def describe(self) -> str:
        """One line a user can read: what differs from the default recipe."""
        return describe_options(self.options)

    def to_dict(self) -> dict[str, Any]:
        opts = asdict(self.options)
        opts["float_nodes"] = list(self.options.float_nodes)
        return {
            "schema": SCHEMA,
            "name": self.name,
            "options": opts,
            "calib_dir": self.calib_dir,
            "note": self.note,
            "created": self.created,
            "describe": self.describe(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "recipe") -> Recipe:
        try:
            raw = dict(data["options"])
            known = {f.name for f in fields(Int8Options)}
            if unknown := set(raw) - known:
                raise ValueError(f"unknown settings {sorted(unknown)}")
            raw["flavour"] = Int8Flavour(raw.get("flavour", Int8Flavour.CPU.value))
            raw["method"] = CalibrationMethod(raw.get("method", CalibrationMethod.MINMAX.value))
            raw["float_nodes"] = tuple(str(n) for n in raw.get("float_nodes", ()))
            options = Int8Options(**raw)
            return cls(
                name=str(data["name"]),
                options=options,
                calib_dir=str(data["calib_dir"]),
                note=str(data.get("note", "")),
                created=str(data.get("created", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{origin} is not a valid recipe: {exc}") from None


def describe_options(options: Int8Options) -> str:
    default = Int8Options(flavour=options.flavour)
    parts = [f"{options.flavour.value} flavour", f"{options.method.value}"]
    if options.method is CalibrationMethod.MINMAX:
        parts[-1] += " (moving average)" if options.moving_average else " (extremes)"
    if options.method is CalibrationMethod.PERCENTILE:
        parts[-1] += f" {options.percentile:g}"
    parts.append(f"{options.max_images} images")
    floats = [n.strip("/") for n in options.float_nodes]
    if floats:
        parts.append("float: " + ", ".join(floats))
    if options.keep_stem_float != default.keep_stem_float:
        parts.append("stem " + ("float" if options.keep_stem_float else "int8"))
    if options.keep_head_float != default.keep_head_float:
        parts.append("head " + ("float" if options.keep_head_float else "int8"))
    if not options.quantize_silu:
        parts.append("SiLU float")
    if not options.per_channel:
        parts.append("per-tensor weights")
    if options.flavour is Int8Flavour.CPU:
        parts.append("7-bit weights" if options.reduce_range else "8-bit weights")
    return ", ".join(parts)


class RecipeBook:
    """The recipes of one model: ``folder/NAME.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, name: str) -> Path:
        return self.folder / f"{check_recipe_name(name)}.json"

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json") if not p.name.startswith("."))

    def all(self) -> list[Recipe]:
        out = []
        for name in self.names():
            try:
                out.append(self.get(name))
            except InputError:
                continue  # a damaged file is reported by get(); listing skips it
        return out

    def get(self, name: str) -> Recipe:
        path = self._path(name)
        if not path.is_file():
            have = ", ".join(self.names()) or "none yet (the Precision explorer or `python -m core explore` makes them)"
            raise InputError(f"no INT8 recipe named {name!r} for this model; saved recipes: {have}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"recipe file {path} cannot be read: {exc}") from None
        recipe = Recipe.from_dict(data, origin=str(path))
        if recipe.name != name:
            raise InputError(f"recipe file {path} names itself {recipe.name!r}")
        return recipe

    def save(self, recipe: Recipe, overwrite: bool = False) -> Path:
        path = self._path(recipe.name)
        if path.exists() and not overwrite:
            raise InputError(f"a recipe named {recipe.name!r} exists already; choose another name or delete it first")
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(json.dumps(recipe.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def delete(self, name: str) -> None:
        path = self._path(name)
        if not path.is_file():
            raise InputError(f"no INT8 recipe named {name!r} for this model")
        path.unlink()

    def unique_name(self, stem: str) -> str:
        """``stem``, or ``stem-2``, ``stem-3``... whichever is free."""
        taken = set(self.names())
        name, i = stem, 2
        while name in taken:
            name, i = f"{stem}-{i}", i + 1
        return check_recipe_name(name)


def recipe_variant(recipe: Recipe) -> str:
    """The variant a recipe runs as on the CPU here: ``ort:int8@NAME`` (trt flavour: ``trt:int8@NAME``)."""
    return f"{'ort' if recipe.flavour is Int8Flavour.CPU else 'trt'}:int8@{recipe.name}"
