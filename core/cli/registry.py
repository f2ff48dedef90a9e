"""``python -m core COMMAND``: the commands are the modules of this folder that declare one.

A command module has a docstring (its first line is the command's help), ``GROUPS`` (the argument groups
it shares with others, :mod:`core.cli.options`), ``arguments(parser)`` for its own, and ``run(args)``
returning its result: a :class:`core.results.Result` (printed as JSON with ``--json``, else as text) or a
plain exit status for a command that writes files. A new command is one new module; nothing else changes.

Results go to stdout, progress bars and notes to stderr. Errors exit non-zero with one line on stderr
(with ``--json`` also ``{"kind": "error", "error": ..., "exit_code": ...}`` on stdout); ``--debug`` shows
the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from core.cli.options import Group, Parser, error_line, report_error
from core.errors import CoreError

EXIT_USER_ERROR = 2
EXIT_PARTIAL = 1


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    groups: tuple[Group, ...]
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Any]

    @classmethod
    def of(cls, module: ModuleType) -> Command:
        name = getattr(module, "NAME", module.__name__.rsplit(".", 1)[1])
        doc = (module.__doc__ or "").strip()
        return cls(name, doc.split("\n", 1)[0].rstrip("."), tuple(module.GROUPS), module.arguments, module.run)


def commands() -> dict[str, Command]:
    """Every command module of :mod:`core.cli`, by command name (in the order of ``ORDER``, then by name)."""
    import core.cli

    found = {}
    for info in pkgutil.iter_modules(core.cli.__path__):
        module = importlib.import_module(f"core.cli.{info.name}")
        if callable(getattr(module, "run", None)) and callable(getattr(module, "arguments", None)):
            command = Command.of(module)
            found[command.name] = command
    order = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


# How `--help` lists them: the everyday ones first (a command missing here is listed after, by name).
ORDER = (
    "detect", "compare", "bench", "profile", "eval", "video", "report", "convert", "drift", "explore", "gate", "ship",
    "capacity", "recipes",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    registry = commands()
    parser = Parser(prog="python -m core", description="Compare how to run a YOLOv5 detector: " + " | ".join(registry))
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in registry.values():
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(p)
        for group in command.groups:
            group(p)
    return parser


def show(result: Any, as_json: bool) -> int:
    """Print a command's result; its exit status."""
    if isinstance(result, int):
        return result
    if as_json:
        doc = result.to_dict()
        if "system" not in doc:  # every result says what it was measured on (the CPU's instruction sets included)
            from core.runtime import system_info

            doc["system"] = system_info()
        print(json.dumps(doc, indent=2))
    else:
        print(result.text())
    return int(result.exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    Parser.json_errors = "--json" in argv  # a usage error is JSON on stdout too
    try:
        args = parser.parse_args(argv)
    finally:
        Parser.json_errors = False
    command = commands()[args.command]
    as_json = bool(getattr(args, "json", False))
    try:
        return show(command.run(args), as_json)
    except CoreError as exc:
        if args.debug:
            raise
        return report_error(error_line(exc), EXIT_USER_ERROR, as_json)
    except KeyboardInterrupt:
        return report_error("interrupted", 130, as_json)
    except Exception as exc:  # a bug of ours: still one line unless --debug
        if args.debug:
            raise
        text = f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"
        return report_error(text, EXIT_PARTIAL, as_json)
