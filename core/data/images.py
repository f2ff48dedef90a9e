"""Decode user images safely: any common mode to RGB, EXIF orientation applied, pixel limit first."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from core.config import MAX_IMAGE_PIXELS
from core.errors import InputError
from core.formats import IMAGE_TYPES


def _pil_open(fp: object) -> object:
    """Pillow's own ``Image.open``. ultralytics replaces it on import with a wrapper that tries to
    pip-install a HEIF plugin whenever a file is not an image; we want the plain error instead."""
    import sys

    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    opener = getattr(patches, "_image_open", None) or Image.open
    return opener(fp)


def load_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Return an RGB uint8 HxWx3 array as the user sees the picture (EXIF rotation applied).

    Refuses files over :data:`MAX_IMAGE_PIXELS` from the header alone, before decoding them.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = name or (Path(source).name if not isinstance(source, bytes) else "image")
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"{label}: cannot open ({exc.strerror or exc})") from exc
    with fp:
        try:
            img = _pil_open(fp)
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{label}: {w}x{h} pixels is over the limit of {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
                )
            img = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(img)
        except InputError:
            raise
        except Image.DecompressionBombError as exc:
            raise InputError(
                f"{label}: refused as a decompression bomb (over {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels)"
            ) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            kind = "not an image" if isinstance(exc, UnidentifiedImageError) else "damaged or unreadable image"
            raise InputError(f"{label}: {kind} (accepted: {', '.join(IMAGE_TYPES)})") from exc
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"{label}: image has no pixels")
    return rgb


def _to_rgb(img: object) -> np.ndarray:
    from PIL import Image

    assert isinstance(img, Image.Image)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if arr.max() > 255 else 255.0
        gray = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (114, 114, 114, 255))
        img = Image.alpha_composite(background, img)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)
