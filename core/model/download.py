"""Download an official checkpoint once: streamed with progress, written atomically, checked to load."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from core.cache import atomic_path, file_lock
from core.config import OFFICIAL_MODELS, weights_url
from core.errors import ModelError, Setting
from core.progress import Progress, no_progress


def download_official(name: str, dest_dir: Path, progress: Progress = no_progress, timeout: float = 30.0) -> Path:
    """Fetch ``<name>.pt`` from the official YOLOv5 v7.0 release (or ``$YOLOLAB_WEIGHTS_URL``)."""
    from core.runtime import load_legacy

    if name not in OFFICIAL_MODELS:
        raise ModelError(f"unknown official model {name!r}: expected one of {', '.join(OFFICIAL_MODELS)}")
    target = dest_dir / f"{name}.pt"
    url = f"{weights_url()}/{name}.pt"
    with file_lock(target):
        if target.is_file():
            return target
        with atomic_path(target) as tmp:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, tmp.open("wb") as out:
                    total = int(resp.headers.get("Content-Length") or 0)
                    done = 0
                    while chunk := resp.read(1 << 16):
                        out.write(chunk)
                        done += len(chunk)
                        frac = done / total if total else 0.0
                        progress(min(frac, 1.0), f"downloading {name}.pt: {done / 1e6:.1f} MB")
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                raise ModelError(
                    f"could not download {name}.pt from {url} ({exc}); put the file in the models directory "
                    "or set $YOLOLAB_WEIGHTS_URL to a mirror",
                    setting=Setting.MODELS_DIR,
                ) from exc
            if total and done != total:
                raise ModelError(f"download of {url} stopped at {done} of {total} bytes; try again")
            try:
                load_legacy(tmp)
            except ModelError as exc:
                raise ModelError(f"downloaded {url} but it is not a usable YOLOv5 checkpoint: {exc}") from exc
    progress(1.0, f"downloaded {name}.pt")
    return target
