"""The house's rules (`.importlinter`, README "Layout"): layers, no cycles, core alone, callers use faces.

`lint-imports` runs on the tree as it is, and on a temporary copy with one rule broken on purpose, where
it must fail: a contract that cannot fail would guard nothing.
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("runtime", "model", "data", "measure", "report", "video", "precision", "cluster", "cli")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(where: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(where)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=where, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    p = lint(ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "3 kept, 0 broken" in p.stdout


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for name in ("core", "ui", "pages"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the runtime reaching up into measurements: a layer violation
        ("core/runtime/geometry.py", "import core.measure.metrics", "Layers"),
        # a room reaching sideways into another on the same layer
        ("core/video/writer.py", "import core.cluster", "Layers"),
        # detector imports geometry; geometry importing detector closes a circle
        ("core/runtime/geometry.py", "import core.runtime.detector", "No import cycles"),
        # the engine must never need the dashboard
        ("core/tables.py", "import streamlit", "core never imports"),
    ],
)
def test_a_broken_rule_fails_the_contracts(tree_copy: Path, module: str, line: str, broken: str):
    target = tree_copy / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    p = lint(tree_copy)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"{broken}" in p.stdout and "BROKEN" in p.stdout


def test_callers_import_rooms_through_their_faces():
    """Outside a room, nobody imports its modules directly: pages, ui, the CLI and the other rooms use
    ``core.<room>`` (its ``__init__``, whose ``__all__`` is the room's public surface)."""
    graph = grimp.build_graph("core", "ui", "pages", exclude_type_checking_imports=True)
    reaching_in = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            parts = imported.split(".")
            if parts[0] != "core" or len(parts) < 3 or parts[1] not in ROOMS:
                continue
            room = ".".join(parts[:2])
            if importer != room and not importer.startswith(room + "."):
                reaching_in.append(f"{importer} -> {imported}")
    assert reaching_in == []


@pytest.mark.parametrize("room", ROOMS)
def test_every_face_declares_what_it_offers_and_offers_it(room: str):
    init = ROOT / "core" / room / "__init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), f"core/{room}/__init__.py says what the room is for"
    module = importlib.import_module(f"core.{room}")
    assert module.__all__, f"core.{room} names its public surface"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    assert len(set(module.__all__)) == len(module.__all__)
