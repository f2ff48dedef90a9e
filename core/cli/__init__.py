"""The command line: ``python -m core COMMAND`` — one module per command, found by :mod:`core.cli.registry`.

Each command module declares its help (docstring), the argument groups it shares (:mod:`core.cli.options`)
and ``run(args)`` returning its result; the registry builds the parser and prints the result as JSON
(``--json``) or text.
"""

from __future__ import annotations

from core.cli.doctor import cmd_doctor
from core.cli.registry import EXIT_PARTIAL, EXIT_USER_ERROR, Command, build_parser, commands, main

__all__ = ["EXIT_PARTIAL", "EXIT_USER_ERROR", "Command", "build_parser", "cmd_doctor", "commands", "main"]
