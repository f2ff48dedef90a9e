"""Content-hash cache of artefacts: atomic writes, a lock per artefact, and a hash check on use.

Every artefact ``X`` has a sidecar ``X.json`` holding its sha256 and what it was built from. An
artefact whose bytes no longer match (truncated, tampered) is rebuilt; a build that fails or is
interrupted leaves only a temporary file that is never used.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HASH_MEMO: dict[tuple[str, int, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """sha256 of a file, memoised on (path, inode, size, mtime, ctime) so repeated checks cost nothing.

    ctime is in the key because any write changes it and, unlike mtime, it cannot be set back: an edit
    that keeps the size and restores the mtime is still re-hashed."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _HASH_MEMO:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


def sha256_text(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """An exclusive inter-process lock for building ``target`` (two processes, one build)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.with_name(target.name + ".lock")
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


@dataclass(frozen=True)
class CachedFile:
    path: Path
    sha256: str
    size: int
    meta: dict[str, Any]


def read_verified(path: Path) -> CachedFile | None:
    """The cached artefact if it exists and its bytes match the recorded hash, else ``None``."""
    side = _sidecar(path)
    if not path.is_file() or not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
        digest = sha256_file(path)
    except (OSError, ValueError):
        return None
    if meta.get("sha256") != digest:
        return None
    return CachedFile(path, digest, path.stat().st_size, meta)


def cached_build(target: Path, build: Callable[[Path], None], meta: dict[str, Any]) -> CachedFile:
    """Return ``target`` if it is cached and intact; otherwise build it (``build(tmp_path)``) under a lock."""
    hit = read_verified(target)
    if hit is not None:
        return hit
    with file_lock(target):
        hit = read_verified(target)  # another process may have built it while we waited
        if hit is not None:
            return hit
        _remove_stale_parts(target)
        started = time.perf_counter()
        with atomic_path(target) as tmp:
            build(tmp)
            digest = sha256_file(tmp)
        record = dict(meta, sha256=digest, build_seconds=round(time.perf_counter() - started, 2))
        with atomic_path(_sidecar(target)) as tmp_side:
            tmp_side.write_text(json.dumps(record, indent=2, default=str))
    hit = read_verified(target)
    if hit is None:  # pragma: no cover - only if the disk lies to us
        raise OSError(f"artefact {target} was written but does not verify")
    return hit


def _remove_stale_parts(target: Path) -> None:
    """Temporary files of builds of ``target`` that were killed (no ``finally`` ran). Only called under
    the target's lock: every build holds it, so no live build owns one of these (the sidecar's
    ``.X.json.*.part`` match too)."""
    for p in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        p.unlink(missing_ok=True)


def remove_artefact(path: Path) -> None:
    for p in (path, _sidecar(path), path.with_name(path.name + ".lock")):
        p.unlink(missing_ok=True)
