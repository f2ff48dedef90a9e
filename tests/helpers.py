"""Test helpers that build real files: legacy-format checkpoints, hostile pickles, tiny ONNX models."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def legacy_pickle_names() -> Iterator[None]:
    """Make our stand-in classes pickle under the legacy ``models.yolo`` / ``models.common`` names."""
    import ultralytics.nn.modules as um

    from core.runtime._legacy_modules import LegacyDetect, LegacyModel
    from core.runtime.legacy_yolov5 import _COMMON_BLOCKS

    mods = {n: types.ModuleType(n) for n in ("models", "models.yolo", "models.common")}
    saved_mods = {n: sys.modules.get(n) for n in mods}
    renamed: list[tuple[type, str, str]] = []

    def alias(cls: type, module: str, name: str) -> None:
        renamed.append((cls, cls.__module__, cls.__qualname__))
        cls.__module__, cls.__qualname__ = module, name
        setattr(mods[module], name, cls)

    sys.modules.update(mods)
    alias(LegacyModel, "models.yolo", "Model")
    alias(LegacyDetect, "models.yolo", "Detect")
    for n in _COMMON_BLOCKS:
        alias(getattr(um, n), "models.common", n)
    try:
        yield
    finally:
        for cls, module, qualname in renamed:
            cls.__module__, cls.__qualname__ = module, qualname
        for n, m in saved_mods.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def save_legacy_checkpoint(model: object, path: Path) -> Path:
    import torch

    with legacy_pickle_names():
        torch.save({"model": model, "epoch": -1}, str(path))
    return path


def custom_class_checkpoint(yolov5n_pt: Path, path: Path, names: list[str]) -> Path:
    """YOLOv5n with its Detect head re-shaped to ``len(names)`` classes, saved like a YOLOv5 training run."""
    import copy

    import torch
    from torch import nn

    from core.runtime.legacy_yolov5 import load_legacy

    model = copy.deepcopy(load_legacy(yolov5n_pt).model)
    detect = model.model[-1]
    nc = len(names)
    detect.nc, detect.no = nc, nc + 5
    torch.manual_seed(0)
    detect.m = nn.ModuleList(nn.Conv2d(m.in_channels, detect.na * detect.no, 1) for m in detect.m)
    model.names = names
    model.half()
    return save_legacy_checkpoint(model, path)


class MarkerPayload:
    """Unpickling this would create ``marker``: proof that code from a file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[override]
        return (Path.touch, (self.marker,))


def hostile_checkpoint(path: Path, marker: Path, disguise_as_yolov5: bool) -> Path:
    import torch

    payload: dict[str, object] = {"evil": MarkerPayload(marker)}
    if disguise_as_yolov5:
        with legacy_pickle_names():
            from core.runtime._legacy_modules import LegacyModel

            payload["model"] = LegacyModel()
            torch.save(payload, str(path))
    else:
        torch.save(payload, str(path))
    return path


def tiny_classifier_onnx(path: Path) -> Path:
    """A real ONNX image classifier ([1,3,64,64] -> [1,10]): a model that is not a detector."""
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)).eval()
    torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17)
    return path


def random_bytes(path: Path, n: int = 4096, seed: int = 0) -> Path:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())
    return path


# ---------------------------------------------------------------------------------------------
# hostile and unusual images (issue 5's matrix): name -> bytes, and what each must give


def _encoded(img: object, fmt: str, **kw: object) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)  # type: ignore[attr-defined]
    return buf.getvalue()


def png_bomb(side: int = 30000) -> bytes:
    """A valid PNG header announcing ``side`` x ``side`` pixels (900 MP at 30000) over a few KB of data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 100_000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def exif_rotated_jpeg(path: Path) -> bytes:
    """``path`` stored turned a quarter counter-clockwise, with EXIF orientation 6 (show it turned
    clockwise): a viewer, and load_image, show the original upright picture."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encoded(img.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)


def hostile_images(bus_jpg: Path) -> dict[str, tuple[bytes, str | None]]:
    """Every image case of the matrix: file name -> (bytes, None if it must be detected on, else the
    words its one-line error must contain)."""
    from PIL import Image

    bus = Image.open(bus_jpg).convert("RGB")
    data = bus_jpg.read_bytes()
    gray16 = Image.fromarray((np.asarray(bus.convert("L"), np.uint16) * 257).astype(np.uint16))
    return {
        "zero-bytes.jpg": (b"", "not an image"),
        "truncated.jpg": (data[: len(data) // 3], "damaged or unreadable image"),
        "text-file.jpg": (b"these are my holiday notes, not a picture\n" * 20, "not an image"),
        "bomb-30000x30000.png": (png_bomb(), "50 megapixels"),
        "one-pixel.png": (_encoded(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), None),
        "strip-4000x1.png": (_encoded(Image.new("RGB", (4000, 1), (90, 90, 90)), "PNG"), None),
        "grayscale.png": (_encoded(bus.convert("L"), "PNG"), None),
        "rgba.png": (_encoded(bus.convert("RGBA"), "PNG"), None),
        "palette.png": (_encoded(bus.quantize(256), "PNG"), None),
        "sixteen-bit.png": (_encoded(gray16, "PNG"), None),
        "cmyk.jpg": (_encoded(bus.convert("CMYK"), "JPEG", quality=95), None),
        "exif-rotated.jpg": (exif_rotated_jpeg(bus_jpg), None),
    }


def dynamic_relu_onnx(path: Path) -> Path:
    """A one-node ONNX file whose input and output are [batch, 3, h, w] with every size but 3 dynamic."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    graph = helper.make_graph([helper.make_node("Relu", ["images"], ["out"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def results_table(at: object, *columns: str) -> object:
    """The first dataframe on an AppTest page that has all ``columns`` (pages show a decision card first)."""
    for frame in at.dataframe:  # type: ignore[attr-defined]
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns} on the page")


def quantized_in(model: object, prefix: str) -> list[str]:
    """What of the block ``prefix`` runs in INT8: convs with Q/DQ weights, and tensors that go from one of its
    nodes to another through a Q/DQ pair. (Its inputs from a quantized block before it, and its output into a
    quantized block after it, pass a Q/DQ pair whatever the block does: those are not counted.)"""
    nodes = list(model.graph.node)  # type: ignore[attr-defined]
    made_by = {o: n for n in nodes for o in n.output}
    inside = {n.name for n in nodes if n.name.startswith(prefix)}
    out = []
    for n in nodes:
        if n.name not in inside:
            continue
        for i in n.input:
            dq = made_by.get(i)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = made_by.get(dq.input[0])
            if q is None:  # a weight: initializer -> DequantizeLinear
                out.append(f"{n.name} weight")
            elif q.op_type == "QuantizeLinear" and getattr(made_by.get(q.input[0]), "name", "") in inside:
                out.append(f"{n.name} input {q.input[0]}")
    return out
