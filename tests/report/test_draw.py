"""core.report.draw.side_by_side: the tiles of a video's variants, each under its caption."""

from __future__ import annotations

import numpy as np
import pytest

from core.report.draw import side_by_side


@pytest.mark.parametrize(("n", "grid", "shape_tiles"), [(1, None, (1, 1)), (2, None, (1, 2)), (3, None, (1, 3)),
                                                         (4, None, (2, 2)), (4, False, (1, 4))])  # fmt: skip
def test_side_by_side_layout_and_captions(n: int, grid: bool | None, shape_tiles: tuple[int, int]) -> None:
    h, w = 90, 160
    frames = [np.full((h, w, 3), 50 * (i + 1), np.uint8) for i in range(n)]
    out = side_by_side(frames, [f"ort:v{i}  12.3 ms  4 objects" for i in range(n)], grid=grid)
    rows, cols = shape_tiles
    bar = (out.shape[0] // rows) - h
    assert bar > 0 and out.shape == (rows * (h + bar), cols * w, 3)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = out[r * (h + bar) : (r + 1) * (h + bar), c * w : (c + 1) * w]
        assert (tile[bar:] == 50 * (i + 1)).all()  # the picture, untouched, under its caption
        caption = tile[:bar]
        assert (caption.max(axis=2) > 200).any() and np.median(caption) < 60  # white text on a dark bar


def test_side_by_side_rejects_mismatched_inputs() -> None:
    a = np.zeros((10, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="label"):
        side_by_side([a, a], ["one"])
    with pytest.raises(ValueError, match="size"):
        side_by_side([a, np.zeros((12, 20, 3), np.uint8)], ["a", "b"])
    with pytest.raises(ValueError, match="at most"):
        side_by_side([a] * 5, ["x"] * 5)


def test_class_colours_never_look_like_the_diff_colours():
    import math

    from core.report.draw import EXTRA, MATCHED, MISSED, class_colour

    for class_id in range(80):
        c = class_colour(class_id)
        assert min(math.dist(c, d) for d in (MATCHED, MISSED, EXTRA)) >= 100, (class_id, c)


def test_video_captions_carry_each_variants_colour():
    from core.report.colours import VARIANT_COLOURS, hex_to_rgb
    from core.report.draw import side_by_side

    frames = [np.zeros((120, 160, 3), np.uint8)] * 2
    colours = [hex_to_rgb(VARIANT_COLOURS[v]) for v in ("ort:fp32", "ort:int8")]
    out = side_by_side(frames, ["ort:fp32", "ort:int8"], colours=colours)
    bar_middle = out.shape[0] - 120  # caption height
    for i, colour in enumerate(colours):
        swatch = out[bar_middle // 2, i * 160 + 6]
        assert tuple(int(c) for c in swatch) == colour
