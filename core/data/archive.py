"""Unpack an uploaded zip safely: no paths outside the target, bounded size, ratio and file count.

Everything is checked from the zip's directory before a byte is written; the extraction goes to a
temporary folder renamed onto ``dest`` at the end, so a failure never leaves a half-unpacked dataset.
"""

from __future__ import annotations

import io
import lzma
import shutil
import uuid
import zipfile
import zlib
from pathlib import Path

from core.errors import InputError

MAX_UNPACKED_BYTES = 2 << 30  # 2 GiB unpacked in all
MAX_FILES = 100_000
# A member that unpacks to more than MAX_RATIO times its compressed size (and more than RATIO_FLOOR
# bytes) is a decompression bomb: images do not compress, label text about 5x.
MAX_RATIO = 100
RATIO_FLOOR = 16 << 20


# What extracting a damaged member raises: a bad CRC or header (BadZipFile), corrupt deflate / lzma / bzip2
# data (zlib.error, LZMAError, OSError), an encrypted member (RuntimeError), an unknown method (NotImplementedError).
_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
)


def extract_zip(data: bytes, dest: Path, name: str = "archive.zip") -> Path:
    """Extract into ``dest``; returns the folder holding ``images/`` if the zip wraps it in one folder."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise InputError(f"{name}: not a zip file ({exc})") from exc
    root = dest.resolve()
    if root.exists():
        raise InputError(f"{name}: cannot unpack into {dest}, it exists already")
    part = root.with_name(f".{root.name}.{uuid.uuid4().hex[:8]}.part")
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_FILES:
            raise InputError(f"{name}: {len(infos)} files; at most {MAX_FILES} are accepted")
        total = sum(i.file_size for i in infos)
        if total > MAX_UNPACKED_BYTES:
            raise InputError(
                f"{name}: unpacks to {total / 2**30:.1f} GB; at most {MAX_UNPACKED_BYTES / 2**30:.0f} GB accepted"
            )
        for info in infos:
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise InputError(
                    f"{name}: refused as a zip bomb, {info.filename!r} unpacks to {info.file_size / 2**20:.0f} MB "
                    f"from {info.compress_size / 2**20:.1f} MB (at most {MAX_RATIO}x is accepted)"
                )
            target = (part / info.filename).resolve()
            if not target.is_relative_to(part):
                raise InputError(f"{name}: refused, entry {info.filename!r} points outside the archive")
        try:
            zf.extractall(part)
            part.rename(root)
        except _DAMAGED as exc:
            raise InputError(f"{name}: damaged zip ({exc})") from exc
        finally:
            shutil.rmtree(part, ignore_errors=True)
    return dataset_root(root)


def dataset_root(folder: Path) -> Path:
    """The folder holding ``images/``: ``folder`` itself or, for a zip that wraps it in one folder, that one."""
    for candidate in (folder, *[p for p in folder.iterdir() if p.is_dir()]):
        if (candidate / "images").is_dir():
            return candidate
    return folder
