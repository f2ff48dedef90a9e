"""The model's saved INT8 recipes (run them as ort:int8@NAME).

``python -m core recipes [--model M] [--delete NAME] [--json]``
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from core.cli import options
from core.model import recipe_rows
from core.results import Result
from core.tables import Column, Table

GROUPS = (options.model(), options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--delete", metavar="NAME", help="delete this recipe (its built file stays cached)")


@dataclass
class RecipeList(Result):
    """A model's saved INT8 recipes, with their variant names and whether each file is built."""

    kind = "recipes"
    model: str
    recipes: list[dict[str, Any]]
    folder: str = ""

    def payload(self) -> dict[str, Any]:
        return {"model": self.model, "recipes": self.recipes}

    def table(self) -> Table:
        rows = [(r["variant"], r["describe"], "built" if r["built"] else "not built yet") for r in self.recipes]
        return Table((Column("variant"), Column("recipe"), Column("file")), rows)

    def text(self) -> str:
        if not self.recipes:
            return f"{self.model}: no saved INT8 recipes (`python -m core explore` or the explorer page saves them)"
        lines = [f"{self.model}: {len(self.recipes)} INT8 recipe(s) in {self.folder}"]
        for r in self.recipes:
            built = "built" if r["built"] else "not built yet"
            lines.append(f"  {r['variant']:<28} {r['describe']}  ({built})")
            if r["note"]:
                lines.append(f"  {'':<28} {r['note']}")
        return "\n".join(lines)


def run(args: argparse.Namespace) -> RecipeList:
    store = options.store(args)
    book = store.recipes
    if args.delete:
        book.delete(args.delete)
        print(f"deleted recipe {args.delete!r} of {store.source.name}", file=sys.stderr)
    return RecipeList(store.source.name, recipe_rows(store), str(book.folder))
