"""core.tables: one table per result type, printed by the CLI, shown by pages, written as CSV."""

import csv
import io

import pytest

from core.tables import Column, Table


def _table() -> Table:
    cols = (Column("variant"), Column("p50 ms", 2), Column("matched"), Column("mean |Δconf|", 4))
    rows = [("ort:fp32", 12.3456, None, None), ("ort:int8", 9.87654, 4, 0.043721)]
    return Table(cols, rows, ("ms per image, end to end",))


def test_records_round_as_declared_and_keep_empty_cells_empty():
    assert _table().records() == [
        {"variant": "ort:fp32", "p50 ms": 12.35, "matched": None, "mean |Δconf|": None},
        {"variant": "ort:int8", "p50 ms": 9.88, "matched": 4, "mean |Δconf|": 0.0437},
    ]
    assert _table().column("matched") == [None, 4]


def test_text_aligns_numbers_right_text_left_and_prints_the_notes():
    lines = _table().to_text().splitlines()
    assert lines[0].split() == ["variant", "p50", "ms", "matched", "mean", "|Δconf|"]
    assert lines[1].startswith("ort:fp32 ") and lines[1].rstrip().endswith("—")
    assert lines[2].endswith("0.0437") and "9.88" in lines[2]
    assert len(lines[1]) == len(lines[2])  # columns line up
    assert lines[-1] == "ms per image, end to end"


def test_csv_has_the_titles_and_the_rounded_values():
    rows = list(csv.DictReader(io.StringIO(_table().to_csv())))
    assert rows[1] == {"variant": "ort:int8", "p50 ms": "9.88", "matched": "4", "mean |Δconf|": "0.0437"}


def test_a_row_that_does_not_fit_the_columns_is_refused():
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        Table((Column("a"), Column("b"), Column("c")), [(1, 2)])
