import io

import numpy as np
import pytest
from PIL import Image

from core.config import MAX_IMAGE_PIXELS
from core.data.images import load_image
from core.errors import InputError


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("L", (20, 10), 128),
        lambda: Image.new("RGBA", (20, 10), (255, 0, 0, 128)),
        lambda: Image.new("P", (20, 10), 3),
        lambda: Image.new("I;16", (20, 10), 40000),
        lambda: Image.new("1", (20, 10), 1),
        lambda: Image.new("RGB", (1, 1), (1, 2, 3)),
    ],
    ids=["gray", "rgba", "palette", "16-bit", "bilevel", "1x1"],
)
def test_every_common_mode_becomes_rgb_uint8(make):
    img = make()
    arr = load_image(_png(img), "x.png")
    assert arr.dtype == np.uint8 and arr.shape == (img.size[1], img.size[0], 3)


def test_cmyk_jpeg_is_converted():
    buf = io.BytesIO()
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(buf, format="JPEG")
    arr = load_image(buf.getvalue(), "cmyk.jpg")
    assert arr.shape == (8, 16, 3) and arr[..., 0].mean() > 200  # red stays red


def test_exif_rotation_is_applied_so_boxes_land_on_the_view_the_user_sees():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert load_image(buf.getvalue(), "phone.jpg").shape == (40, 20, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an image"),
        (b"hello, I am a text file", "not an image"),
    ],
)
def test_garbage_gets_one_clear_message(data, message):
    import ultralytics.utils.patches  # noqa: F401  # patches PIL.Image.open; must not change our errors

    with pytest.raises(InputError, match=message):
        load_image(data, "fake.jpg")


def test_truncated_jpeg_is_reported(bus_jpg):
    data = bus_jpg.read_bytes()
    with pytest.raises(InputError, match=r"bus\.jpg: damaged"):
        load_image(data[: len(data) // 3], "bus.jpg")


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    # a 30000 x 30000 PNG is 900 MP; refused before its pixels are decoded
    side = 30000
    assert side * side > MAX_IMAGE_PIXELS
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(InputError, match="megapixels"):
        load_image(png, "bomb.png")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"nope\.jpg: cannot open"):
        load_image(tmp_path / "nope.jpg")
