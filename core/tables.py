"""Results as tables, defined once per result type: printed by the CLI, shown by pages, in CSV and the report."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    title: str
    digits: int | None = None  # shown rounded to this many decimals (text, page, CSV); None: as it is


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    notes: tuple[str, ...] = field(default=())  # what the numbers mean: printed under the CLI table, a page caption

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row {row!r} has {len(row)} cells for {len(self.columns)} columns")

    @property
    def titles(self) -> list[str]:
        return [c.title for c in self.columns]

    def _cell(self, col: Column, value: Any) -> Any:
        if col.digits is not None and isinstance(value, float) and math.isfinite(value):
            return round(value, col.digits)
        return value

    def records(self) -> list[dict[str, Any]]:
        """One dict per row, title -> rounded value: for a DataFrame, the report and CSV."""
        return [{c.title: self._cell(c, v) for c, v in zip(self.columns, row, strict=True)} for row in self.rows]

    def column(self, title: str) -> list[Any]:
        i = self.titles.index(title)
        return [row[i] for row in self.rows]

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.titles, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.records())
        return buf.getvalue()

    def to_text(self) -> str:
        """Aligned plain text: text columns left, numbers right; notes below."""

        def show(col: Column, value: Any) -> str:
            if value is None:
                return "—"
            if isinstance(value, float) and col.digits is not None:
                return f"{value:.{col.digits}f}"
            return str(value)

        cells = [[show(c, v) for c, v in zip(self.columns, row, strict=True)] for row in self.rows]
        numeric = [
            all(isinstance(row[i], int | float) or row[i] is None for row in self.rows) and bool(self.rows)
            for i in range(len(self.columns))
        ]
        widths = [max([len(c.title), *(len(r[i]) for r in cells)]) for i, c in enumerate(self.columns)]

        def line(values: Sequence[str]) -> str:
            parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
            return "  ".join(parts).rstrip()

        out = [line(self.titles), *(line(r) for r in cells), *self.notes]
        return "\n".join(out)
