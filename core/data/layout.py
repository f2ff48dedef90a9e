"""Where a labelled set's images and labels are, from what a user points at.

Accepted, as users have them:

- a flat set: ``ROOT/images`` + ``ROOT/labels`` (nested folders mirrored), or images with a ``.txt`` beside each;
- the ultralytics split layout ``ROOT/images/<split>/`` + ``ROOT/labels/<split>/``, given as the split's image
  folder (labels found by YOLO's rule: the last ``images`` in the path becomes ``labels``) or as ``ROOT``
  (the one split whose name starts with ``val`` is taken; otherwise an error lists the splits);
- a folder holding one such dataset folder (a zip's wrapper folder, a download's parent folder);
- an ultralytics ``data.yaml``: its ``path``, ``val`` (a folder, a list of folders, or a ``.txt`` of image
  paths) and ``names`` (a list or ``{id: name}``), read with ``yaml.safe_load``;
- a ``.txt`` listing image paths (as a data.yaml's ``val`` may name);
- a ``.zip`` of any of these, unpacked safely (:func:`core.data.archive.extract_zip`) into the cache folder;
  a data.yaml at its top is used, its ``path`` being the unpacked folder (as ultralytics does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.cache import sha256_text
from core.config import cache_dir
from core.data.archive import MAX_UNPACKED_BYTES, extract_zip
from core.errors import InputError
from core.formats import IMAGE_SUFFIXES

YAML_SUFFIXES = (".yaml", ".yml")
# Sub-folders of images/ whose names start so are splits (train2017, val, valid, test-dev ...), not categories.
SPLIT_PREFIXES = ("train", "val", "test", "minival")
LAYOUT_HINT = "YOLO layout: images/… beside labels/…, one .txt per image; or a .txt beside each image"


@dataclass(frozen=True)
class FolderSource:
    """Images under ``images`` (recursively), their labels under ``labels`` (the same folder: side by side)."""

    images: Path
    labels: Path
    looked_in: tuple[str, ...]  # where labels were looked for, in words (for messages)


@dataclass(frozen=True)
class ListSource:
    """The images a ``.txt`` lists; each image's label found by YOLO's rule (or beside it)."""

    listing: Path
    files: tuple[Path, ...]


@dataclass(frozen=True)
class DatasetLayout:
    sources: tuple[FolderSource | ListSource, ...]
    names: tuple[str, ...] | None = None  # class names, from a data.yaml
    described: str = ""  # how the path was read, in words ("" for a plain flat folder)


def yolo_label_dir(folder: Path) -> Path | None:
    """YOLO's rule for a folder of images: its last ``images`` component becomes ``labels`` (None: there is none)."""
    parts = folder.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            return Path(*parts[:i], "labels", *parts[i + 1 :])
    return None


def label_file_for(image: Path) -> Path:
    """The label file YOLO reads for ``image``: under the mirrored ``labels`` folder if there is one, else beside it."""
    labels = yolo_label_dir(image.parent)
    if labels is not None and labels.is_dir():
        return labels / f"{image.stem}.txt"
    return image.with_suffix(".txt")


def resolve_layout(given: str | Path) -> DatasetLayout:
    path = Path(given).expanduser()
    if not path.exists():
        raise InputError(f"dataset folder {path} does not exist")
    if path.is_dir():
        return _from_folder(path)
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return _from_yaml(path)
    if suffix == ".zip":
        return _from_zip(path)
    if suffix == ".txt":
        return DatasetLayout((_from_listing(path, path.parent),), described=f"images listed in {path.name}")
    raise InputError(
        f"{path}: a dataset is a folder (images/ + labels/), an ultralytics data.yaml, a .txt of image paths "
        f"or a .zip; got a {suffix or 'file without extension'}"
    )


def _source(images: Path, labels: Path | None) -> FolderSource:
    """Labels in ``labels`` if that folder exists, else side by side with the images."""
    if labels is not None and labels != images and labels.is_dir():
        return FolderSource(images, labels, (str(labels),))
    looked = (f"{labels} (not there)",) if labels is not None and labels != images else ()
    return FolderSource(images, images, (*looked, f"beside the images in {images}"))


def _has_images(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _splits(images: Path) -> list[str] | None:
    """The split folders of ``images/`` (None when it holds images of its own or no folder named like a split)."""
    if _has_images(images):
        return None
    folders = sorted(p.name for p in images.iterdir() if p.is_dir())
    if not any(name.lower().startswith(SPLIT_PREFIXES) for name in folders):
        return None
    return folders


def _from_folder(folder: Path, depth: int = 0) -> DatasetLayout:
    images = folder / "images"
    if images.is_dir():
        splits = _splits(images)
        if splits is None:
            return DatasetLayout((_source(images, folder / "labels"),))
        val = [s for s in splits if s.lower().startswith("val")]
        if len(val) != 1:
            why = "none looks like" if not val else f"{len(val)} look like"
            raise InputError(
                f"{folder}: images/ holds the splits {', '.join(splits)} and {why} the validation split (val…): "
                f"point at one split's image folder, e.g. {images / (val or splits)[0]}"
            )
        split = val[0]
        return DatasetLayout(
            (_source(images / split, folder / "labels" / split),), described=f"split {split} of {folder}"
        )
    labels = yolo_label_dir(folder)
    if labels is not None and labels.is_dir():
        return DatasetLayout((_source(folder, labels),))
    if depth == 0 and not _has_images(folder):
        # one level above a dataset (a zip's wrapper folder, a download's parent folder)
        inner = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "images").is_dir())
        if len(inner) == 1:
            found = _from_folder(inner[0], depth + 1)
            return DatasetLayout(found.sources, found.names, found.described or f"the dataset in {inner[0]}")
        if len(inner) > 1:
            raise InputError(
                f"{folder} holds {len(inner)} datasets ({', '.join(p.name for p in inner)}): point at one of them"
            )
    return DatasetLayout((_source(folder, labels),))


def _from_listing(listing: Path, base: Path) -> ListSource:
    """A .txt of image paths: ``./x`` relative to the .txt's folder, other relative paths to ``base``."""
    try:
        lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{listing}: cannot read the image list ({exc})") from exc
    files = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(entry).expanduser()
        if not p.is_absolute():
            p = listing.parent / entry[2:] if entry.startswith("./") else base / p
        files.append(p)
    if not files:
        raise InputError(f"{listing}: lists no images")
    return ListSource(listing, tuple(files))


def parse_names(value: Any, where: str) -> tuple[str, ...] | None:
    """``names`` of a data.yaml: a list, or a mapping of ids 0..n-1 to names."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    if isinstance(value, dict):
        try:
            by_id = {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            raise InputError(f"{where}: names keys must be class ids 0, 1, …; got {list(value)[:5]}") from None
        if sorted(by_id) != list(range(len(by_id))):
            ids = sorted(by_id)[:10]
            raise InputError(f"{where}: names must number the classes 0..{len(by_id) - 1}; got ids {ids}")
        return tuple(by_id[i] for i in range(len(by_id)))
    raise InputError(f"{where}: names must be a list or a mapping of class ids to names, got {type(value).__name__}")


def _yaml_base(path: Path, declared: Any) -> tuple[Path, str]:
    """Where ``val`` is looked for: ultralytics' ``path`` (absolute, or relative to the yaml's folder, then the
    working folder; absent: the yaml's folder), and a note when a declared path is not on this machine.

    A data.yaml copied with its dataset from another machine names a ``path`` that is not here: its own folder
    is then tried (the note says so), rather than refusing a set that is complete beside it."""
    if declared in (None, ""):
        return path.parent, ""
    declared = Path(str(declared)).expanduser()
    candidates = [declared] if declared.is_absolute() else [path.parent / declared, Path.cwd() / declared]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate, ""
    return path.parent, f"its path: {declared} is not a folder here (looked at {', '.join(map(str, candidates))})"


def _from_yaml(path: Path, base: Path | None = None) -> DatasetLayout:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not a readable YAML file ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an ultralytics data.yaml (path, val, names), got {type(data).__name__}")
    names = parse_names(data.get("names"), str(path))
    nc = data.get("nc")
    if names is not None and isinstance(nc, int) and nc != len(names):
        raise InputError(f"{path}: nc is {nc} but {len(names)} names are given")
    base, note = (base, "") if base is not None else _yaml_base(path, data.get("path"))
    val = data.get("val")
    if not val:
        raise InputError(f"{path}: has no val: entry (the split to evaluate); keys: {', '.join(map(str, data))}")
    entries = [val] if isinstance(val, str) else val
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise InputError(f"{path}: val must be a folder, a .txt of image paths or a list of folders")
    sources: list[FolderSource | ListSource] = []
    for entry in entries:
        target = base / entry
        if not target.exists() and entry.startswith("../"):  # ultralytics' fallback (Roboflow exports)
            target = base / entry[3:]
        if not target.exists():
            why = f"; {note}" if note else ""
            raise InputError(f"{path}: val: {entry} is not there ({target}){why}")
        if target.is_file():
            if target.suffix.lower() != ".txt":
                raise InputError(f"{path}: val: {entry} is a file but not a .txt of image paths")
            sources.append(_from_listing(target, base))
        else:
            sources += _from_folder(target, depth=1).sources
    described = f"{path.name}: val {', '.join(entries)} under {base}" + (f" ({note})" if note else "")
    return DatasetLayout(tuple(sources), names, described)


def _find_yaml(folder: Path) -> Path | None:
    """The data.yaml at the top of an unpacked zip (or in its one wrapper folder)."""
    found = [p for p in (*sorted(folder.iterdir()), *sorted(folder.glob("*/*"))) if p.suffix.lower() in YAML_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        found = [p for p in found if p.stem == "data"] or found
    if len(found) > 1:
        raise InputError(f"{folder.name}: several YAML files ({', '.join(p.name for p in found)}); keep one data.yaml")
    return found[0] if found else None


def zip_folder(path: Path) -> Path:
    """The folder ``path`` (a .zip) is unpacked to in the cache, unpacked now unless it is there already."""
    st = path.stat()
    if st.st_size > MAX_UNPACKED_BYTES:
        raise InputError(f"{path.name}: {st.st_size / 2**30:.1f} GB; at most {MAX_UNPACKED_BYTES / 2**30:.0f} GB")
    key = sha256_text(path.resolve(), st.st_size, st.st_mtime_ns)[:16]
    dest = cache_dir() / "datasets" / f"{path.stem}-{key}"
    if not dest.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            extract_zip(path.read_bytes(), dest, path.name)
        except InputError:
            if not dest.is_dir():  # not another process unpacking the same file at the same time
                raise
    return dest


def _from_zip(path: Path) -> DatasetLayout:
    folder = zip_folder(path)
    data_yaml = _find_yaml(folder)
    found = _from_yaml(data_yaml, base=data_yaml.parent) if data_yaml is not None else _from_folder(folder)
    described = f"{path.name} unpacked to {folder}" + (f"; {found.described}" if found.described else "")
    return DatasetLayout(found.sources, found.names, described)
