"""Unpack an uploaded zip safely: no paths outside the target, bounded size and file count."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from .errors import InputError

MAX_UNPACKED_BYTES = 4 << 30
MAX_FILES = 100_000


def extract_zip(data: bytes, dest: Path, name: str = "archive.zip") -> Path:
    """Extract into ``dest``; returns the folder holding ``images/`` if the zip wraps it in one folder."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InputError(f"{name}: not a zip file ({exc})") from exc
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_FILES:
            raise InputError(f"{name}: {len(infos)} files; at most {MAX_FILES} are accepted")
        total = sum(i.file_size for i in infos)
        if total > MAX_UNPACKED_BYTES:
            raise InputError(f"{name}: unpacks to {total / 2**30:.1f} GB; at most {MAX_UNPACKED_BYTES >> 30} GB")
        root = dest.resolve()
        for info in infos:
            target = (root / info.filename).resolve()
            if not target.is_relative_to(root):
                raise InputError(f"{name}: refused, entry {info.filename!r} points outside the archive")
        try:
            zf.extractall(root)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{name}: damaged zip ({exc})") from exc
    for candidate in (root, *[p for p in root.iterdir() if p.is_dir()]):
        if (candidate / "images").is_dir():
            return candidate
    return root
