"""A model's artefacts in the cache: build each variant's file once, verify it, open detectors on it."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core import config
from core.cache import cached_build, read_verified, sha256_file, sha256_text
from core.config import DEFAULT_IMGSZ, cache_dir
from core.errors import InputError, RuntimeUnavailableError, Setting
from core.model import convert
from core.model.recipes import RecipeBook, recipe_variant
from core.model.sources import ModelSource, SourceKind
from core.progress import Progress, no_progress, scaled
from core.runtime import BackendOptions, Detector, ModelInfo, availability, create_backend, inspect_onnx
from core.variants import Artefact, Int8Flavour, Shape, Variant

NEEDS_CALIBRATION = "INT8 needs calibration images"

# Bump when a conversion step changes its output, to invalidate caches. 2: the Detect head metadata (core.runtime.head).
NO_BASELINE = (
    "the PyTorch baseline runs a YOLOv5 .pt checkpoint (ultralytics/yolov5) with the safe loader; this model is not one"
)
# 3: FP16 with constants folded first (no FP16 shape arithmetic); 4: the trt INT8 flavour on an FP16 graph
CONVERTER_VERSION = "4"


RemoteOpener = Callable[["ModelStore", Variant, "BackendOptions | None"], Detector]
_REMOTE_OPENER: RemoteOpener | None = None


def register_remote_opener(opener: RemoteOpener | None) -> None:
    """How a variant placed on a cluster node (``NODE/ort:fp32``) is opened: the cluster registers it (the
    store does not know the cluster); None forgets it."""
    global _REMOTE_OPENER
    _REMOTE_OPENER = opener


@dataclass(frozen=True)
class ArtefactStatus:
    artefact: Artefact
    path: Path
    exists: bool
    size_bytes: int = 0
    sha256: str = ""
    build_seconds: float | None = None


@dataclass
class ModelStore:
    """Everything derived from one model source, in ``<cache>/models/<name>-<hash>/``."""

    source: ModelSource
    cache_root: Path = field(default_factory=cache_dir)
    imgsz: int | None = None  # None: the ONNX's own input size, else 640
    shape: Shape = Shape.SQUARE  # how images are fitted into the network input (every detector opened runs it)
    calib_dir: Path | None = None
    int8: convert.Int8Options = field(default_factory=convert.Int8Options)
    calib_bundled: bool = False  # calib_dir holds the pictures the app ships (no folder was given)

    def __post_init__(self) -> None:
        self.cache_root = Path(self.cache_root)
        self._info: ModelInfo | None = None
        self._calib_memo: dict[tuple[tuple[str, int, int], ...], str] = {}
        if self.imgsz is not None and (self.imgsz < 32 or self.imgsz % 32):
            raise InputError(f"image size must be a positive multiple of 32, got {self.imgsz}")

    @property
    def directory(self) -> Path:
        return self.cache_root / "models" / f"{self.source.name}-{self.source.sha256[:12]}"

    # -- sizes and model facts -------------------------------------------------------------

    @property
    def input_size(self) -> int:
        if self.source.kind is SourceKind.ONNX:
            hw = self.info().input_hw
            if hw is not None:
                if self.imgsz is not None and self.imgsz != hw[0]:
                    raise InputError(
                        f"{self.source.path.name} has a fixed input of {hw[1]}x{hw[0]}; "
                        f"image size {self.imgsz} was asked for (use the model's own size or re-export the model)",
                        setting=Setting.IMGSZ,
                    )
                return hw[0]
        return self.imgsz or DEFAULT_IMGSZ

    @property
    def input_hw(self) -> tuple[int, int]:
        s = self.input_size
        if self.source.kind is SourceKind.ONNX and (hw := self.info().input_hw) is not None:
            return hw
        return (s, s)

    @property
    def shape_words(self) -> str:
        """How results name the input: "square 640", "rect 640"."""
        return self.shape.words(self.input_size)

    def info(self, progress: Progress = no_progress) -> ModelInfo:
        if self._info is None:
            self._info = inspect_onnx(self.fp32(progress), self.source.names_file)
        return self._info

    # -- artefact paths --------------------------------------------------------------------

    @property
    def calibration_note(self) -> str:
        """What an INT8 number of this store must say about its calibration ("" with the user's own folder)."""
        if not self.calib_bundled or self.calib_dir is None:
            return ""
        n = len(convert.list_images(self.calib_dir))
        return (
            f"INT8 calibrated on the {n} bundled pictures: set a folder of your own images for INT8 numbers you "
            "can rely on"
        )

    def missing_input(self, variant: Variant) -> str:
        """What this store lacks to build ``variant`` ("" when nothing): the one place that says INT8 needs
        calibration images. Callers add how their user gives them (a CLI flag, a page's setting)."""
        if variant.recipe:
            try:
                self.int8_plan(variant)
            except InputError as exc:
                return str(exc)
            return ""
        if variant.spec.artefact.int8_flavour is not None and self.calib_dir is None:
            return NEEDS_CALIBRATION
        if variant.spec.artefact is Artefact.CHECKPOINT and self.source.kind is not SourceKind.LEGACY_PT:
            return NO_BASELINE
        return ""

    @property
    def recipes(self) -> RecipeBook:
        return RecipeBook(self.directory / "recipes")

    def int8_plan(self, variant: Variant) -> tuple[convert.Int8Options, Path | None]:
        """The INT8 settings and calibration folder ``variant``'s file is built with: its recipe's, or the
        store's own (the default recipe, or what --calib-method / --calib-images asked for)."""
        flavour = variant.spec.artefact.int8_flavour
        if flavour is None:
            raise InputError(f"{variant} is not an INT8 variant")
        if not variant.recipe:
            return replace(self.int8, flavour=flavour), self.calib_dir
        recipe = self.recipes.get(variant.recipe)
        if recipe.flavour is not flavour:
            runs = "ort:int8" if recipe.flavour is Int8Flavour.CPU else "trt:int8 or ort-trt:int8"
            raise InputError(
                f"recipe {recipe.name!r} makes a {recipe.flavour.value}-flavour INT8 file; {variant.base} runs the "
                f"{flavour.value} flavour (use it as {runs}@{recipe.name})"
            )
        folder = Path(recipe.calib_dir)
        if not folder.is_dir():
            raise InputError(f"recipe {recipe.name!r} was calibrated on {folder}, which no longer exists")
        return recipe.options, folder

    def _calib_files(self, options: convert.Int8Options | None = None, folder: Path | None = None) -> list[Path]:
        options = options or self.int8
        folder = folder if folder is not None else self.calib_dir
        if folder is None:
            raise InputError(NEEDS_CALIBRATION, setting=Setting.CALIBRATION)
        return convert.list_images(Path(folder))[: options.max_images]

    def _calib_digest(self, files: list[Path]) -> str:
        """The calibration set's content hash, recomputed only when a file's size or mtime changes: pages
        name the INT8 artefact on every rerun, and hashing a few hundred images each time shows."""
        stamp = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        memo = self._calib_memo
        if stamp not in memo:
            memo[stamp] = hashlib.sha256("".join(sha256_file(f) for f in files).encode()).hexdigest()
        return memo[stamp]

    def _int8_key(self, options: convert.Int8Options, folder: Path | None) -> str:
        calib = self._calib_digest(self._calib_files(options, folder))
        opts = asdict(options) | {"flavour": options.flavour.value}
        if opts["per_channel"]:  # the field's default: keys of files built before it existed stay valid
            del opts["per_channel"]
        return sha256_text(CONVERTER_VERSION, sorted(opts.items()), calib)[:12]

    def ranges_path(self, options: convert.Int8Options, folder: Path | None = None) -> Path:
        """Where the activation ranges of ``options``' calibration setting are cached for this model."""
        calib = self._calib_digest(self._calib_files(options, folder))
        key = sha256_text(CONVERTER_VERSION, options.calibration_key(), calib, self.input_size)[:16]
        return self.directory / "calibration" / f"ranges-{options.flavour.value}-{options.method.value}-{key}.json"

    def path_for(
        self, artefact: Artefact, int8: convert.Int8Options | None = None, calib_dir: Path | None = None
    ) -> Path:
        """``int8``/``calib_dir``: an INT8 file built with these settings (default: the store's)."""
        size = self.input_size
        if artefact is Artefact.CHECKPOINT:
            if self.source.kind is not SourceKind.LEGACY_PT:
                raise InputError(f"{self.source.path.name}: {NO_BASELINE}")
            return self.source.path
        if artefact is Artefact.ONNX_FP32:
            if self.source.kind is SourceKind.ONNX:
                return self.source.path
            return self.directory / f"fp32-{size}-v{CONVERTER_VERSION}.onnx"
        if artefact is Artefact.ONNX_FP16:
            return self.directory / f"fp16-{size}-v{CONVERTER_VERSION}.onnx"
        flavour = artefact.int8_flavour
        assert flavour is not None
        options = replace(int8 or self.int8, flavour=flavour)
        folder = calib_dir if int8 is not None else self.calib_dir
        key = self._int8_key(options, folder)
        return self.directory / f"int8-{flavour.value}-{options.method.value}-{size}-{key}.onnx"

    def variant_path(self, variant: Variant) -> Path:
        """The file ``variant`` runs from (its recipe's INT8 file for ``…:int8@NAME``)."""
        if variant.spec.artefact.int8_flavour is None:
            return self.path_for(variant.spec.artefact)
        options, folder = self.int8_plan(variant)
        return self.path_for(variant.spec.artefact, options, folder)

    def variant_artefact(self, variant: Variant, progress: Progress = no_progress) -> Path:
        """``variant``'s file, built if missing (a recipe's INT8 file with that recipe's settings)."""
        if variant.spec.artefact.int8_flavour is None:
            return self.artefact(variant.spec.artefact, progress)
        options, folder = self.int8_plan(variant)
        return self.artefact(variant.spec.artefact, progress, options, folder)

    # -- building --------------------------------------------------------------------------

    def fp32(self, progress: Progress = no_progress) -> Path:
        if self.source.kind is SourceKind.ONNX:
            return self.source.path
        target = self.path_for(Artefact.ONNX_FP32)
        size = self.input_size
        export = convert.export_legacy if self.source.kind is SourceKind.LEGACY_PT else convert.export_ultralytics

        def build(tmp: Path) -> None:
            progress(0.05, f"exporting {self.source.path.name} to ONNX ({size}x{size})")
            export(self.source.path, tmp, size)

        meta = {"from": str(self.source.path), "source_sha256": self.source.sha256, "imgsz": size}
        cached_build(target, build, meta)
        progress(1.0, "FP32 ONNX ready")
        return target

    def artefact(
        self,
        artefact: Artefact,
        progress: Progress = no_progress,
        int8: convert.Int8Options | None = None,
        calib_dir: Path | None = None,
    ) -> Path:
        """The file for ``artefact``, built (with its inputs) if missing or damaged; INT8 with ``int8`` and
        ``calib_dir`` when given (a recipe, a search candidate), else the store's settings."""
        if artefact is Artefact.ONNX_FP32:
            return self.fp32(progress)
        if artefact is Artefact.CHECKPOINT:  # the user's file itself: nothing to build
            return self.path_for(artefact)
        target = self.path_for(artefact, int8, calib_dir)  # first: INT8 without calibration fails before any work
        fp32 = self.fp32(scaled(progress, 0.0, 0.1))
        step = scaled(progress, 0.1, 1.0)  # the conversion itself: 10..100 %
        meta: dict[str, object] = {"from": str(fp32), "from_sha256": sha256_file(fp32)}
        if artefact is Artefact.ONNX_FP16:

            def build(tmp: Path) -> None:
                step(0.2, "converting to FP16")
                convert.to_fp16(fp32, tmp)

        else:
            flavour = artefact.int8_flavour
            assert flavour is not None
            options = replace(int8 or self.int8, flavour=flavour)
            folder = calib_dir if int8 is not None else self.calib_dir
            files = self._calib_files(options, folder)
            ranges = self.ranges_path(options, folder)
            meta.update(calibration=[*[f.name for f in files][:5], "..."], options=asdict(options))

            def build(tmp: Path) -> None:
                convert.quantize_int8(fp32, tmp, files, options, self.input_hw, step, ranges=ranges)

        cached_build(target, build, meta)
        progress(1.0, f"{artefact.value} ready")
        return target

    def status(self) -> list[ArtefactStatus]:
        out = []
        for artefact in Artefact:
            try:
                path = self.path_for(artefact)
            except InputError:  # INT8 without calibration images: cannot even be named
                continue
            hit = read_verified(path) if path != self.source.path else None
            if path == self.source.path:
                out.append(ArtefactStatus(artefact, path, True, path.stat().st_size, self.source.sha256))
            elif hit is None:
                out.append(ArtefactStatus(artefact, path, False))
            else:
                out.append(ArtefactStatus(artefact, path, True, hit.size, hit.sha256, hit.meta.get("build_seconds")))
        return out

    def clear(self) -> None:
        """Delete every built file; the saved recipes (the user's work, a few hundred bytes each) stay."""
        if self.directory.is_dir():
            for child in self.directory.iterdir():
                if child.name == "recipes":
                    continue
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        self._info = None

    # -- running ---------------------------------------------------------------------------

    def open_detector(
        self,
        variant: Variant,
        options: BackendOptions | None = None,
        progress: Progress = no_progress,
        path: Path | None = None,
    ) -> Detector:
        """``path``: run this file as ``variant`` (a search candidate's INT8 file) instead of the variant's own."""
        if variant.node:  # on a cluster node: built here, shipped there by whoever registered how
            if _REMOTE_OPENER is None:
                raise InputError(
                    f"{variant} is placed on a cluster node, and no cluster is connected", setting=Setting.CLUSTER
                )
            return _REMOTE_OPENER(self, variant, options)
        status = availability(variant.runtime, variant.precision)
        if not status:
            raise RuntimeUnavailableError(f"{variant} cannot run here: {status.reason}")
        path = path or self.variant_artefact(variant, lambda f, m: progress(0.8 * f, m))
        info = self.info()
        opts = replace(options or BackendOptions(), shape=self.shape)
        if opts.cache_dir is None:
            opts = replace(opts, cache_dir=self.directory / "engines")
        progress(0.85, f"loading {variant}")
        backend = create_backend(variant.runtime, opts)
        backend.load(path, variant.precision, scaled(progress, 0.85, 0.99))
        progress(1.0, f"{variant} loaded")
        return Detector(variant, backend, info, self.input_hw, self.shape)


def open_store(
    model: str | Path,
    *,
    cache_dir: Path | None = None,
    models_dir: Path | None = None,
    trust: bool = False,
    names: Path | None = None,
    imgsz: int | None = None,
    shape: Shape = Shape.SQUARE,
    calib_dir: Path | None = None,
    int8: convert.Int8Options | None = None,
    progress: Progress = no_progress,
) -> ModelStore:
    """Resolve ``model`` (a path or an official name) and open its store: what the CLI, the doctor, the
    dashboard and the bench scripts all start with. ``cache_dir``/``models_dir`` default to the environment's."""
    from core.model.sources import resolve_model

    cache = config.cache_dir(cache_dir)
    source = resolve_model(
        model,
        models_directory=config.models_dir(models_dir, cache),
        trust=trust,
        names_file=names,
        progress=progress,
    )
    bundled = calib_dir is None
    if bundled:
        calib_dir = bundled_calibration(cache)
    return ModelStore(
        source, cache_root=cache, imgsz=imgsz, shape=shape, calib_dir=calib_dir, int8=int8 or convert.Int8Options(),
        calib_bundled=bundled,
    )  # fmt: skip


def bundled_calibration(cache: Path) -> Path:
    """A folder of the pictures the app ships (and the sample images), for INT8 when no calibration folder is
    given: copied once into the cache (a few hundred kB), named by their content so a change makes a new one."""
    from core.data import sample_images

    files = sample_images()
    digest = sha256_text("\n".join(f"{f.name}:{sha256_file(f)}" for f in files))[:12]
    folder = cache / "calibration" / f"bundled-{digest}"
    if not folder.is_dir():
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(f, tmp / f.name)
        try:
            tmp.rename(folder)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def recipe_rows(store: ModelStore) -> list[dict[str, Any]]:
    """Every saved recipe of ``store``'s model with its variant name and whether its file is built."""
    from core.variants import Variant

    rows = []
    for recipe in store.recipes.all():
        variant = Variant.parse(recipe_variant(recipe))
        try:
            built = store.variant_path(variant).is_file()
        except InputError:
            built = False
        rows.append(recipe.to_dict() | {"variant": str(variant), "built": built})
    return rows
