"""What every result a page, the CLI or the report shows has in common.

A result is a dataclass that names its ``kind`` ("bench", "eval", "compare", "video", "explore", "drift",
"doctor", ...), renders itself as a :class:`~core.tables.Table` and turns into JSON-ready data with
``to_dict()``, whose first key is ``"kind"``: the JSON that ``--json`` prints says what it is, so the report
reads a file's kind instead of guessing it. Pages, charts and report sections take the object itself; it
becomes a dict, a table or a widget only at that edge.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any, ClassVar

from core.tables import Table


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: results and dataclasses by their ``to_dict``, paths as text, enums by value."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


class Result:
    """Mixed into a result dataclass: ``kind`` first in ``to_dict()``, ``text()`` from ``table()``.

    ``to_dict()`` is derived from the dataclass fields (each through :func:`jsonable`), leaving out fields
    whose metadata says ``{"json": False}``; a result whose JSON has another shape overrides ``payload()``.
    ``exit_code`` is what the CLI exits with after showing it (0 unless the result says something failed).
    """

    kind: ClassVar[str] = ""

    def payload(self) -> dict[str, Any]:
        return {
            f.name: jsonable(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.metadata.get("json", True)
        }

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.payload()}

    def table(self) -> Table:
        raise NotImplementedError(f"{type(self).__name__} has no table")

    def text(self) -> str:
        """What the CLI prints without ``--json``."""
        return self.table().to_text()

    @property
    def exit_code(self) -> int:
        return 0


def not_in_json() -> Any:
    """A result field kept for pages and text, left out of ``to_dict()``."""
    return dataclasses.field(default=None, metadata={"json": False})
