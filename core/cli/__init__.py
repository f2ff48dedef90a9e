"""The command line: ``python -m core COMMAND`` (one module per command)."""

from __future__ import annotations

from core.cli.commands import build_parser, cmd_doctor, main

__all__ = ["build_parser", "cmd_doctor", "main"]
