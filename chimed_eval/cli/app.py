"""The ``chimed-eval`` command line: one module per subcommand, wired by :data:`COMMANDS`.

Each command module of ``chimed_eval/cli/`` has ``NAME``, ``add_parser(sub)`` (its subcommand and
flags) and ``run(args) -> int`` (the exit status). A new subcommand is its module plus one line in
:data:`COMMANDS`.
Nothing here imports torch: heavy libraries load only inside the backend that is used.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType
from typing import Sequence

from chimed_eval.core.version import __version__
from chimed_eval.core.errors import BUDGET_EXIT, BudgetReached, ChimedEvalError
from chimed_eval.core.registry import UnknownNameError

# the command modules of chimed_eval/cli/, in the order ``chimed-eval --help`` lists their subcommands
COMMANDS: tuple[str, ...] = (
    "run",
    "merge",
    "sweep",
    "score",
    "leaderboard",
    "compare",
    "export",
    "view",
    "check",
    "report",
    "validate",
    "judge",
    "contamination",
    "list_tasks",
    "list_models",
    "data_cmd",
    "completion",
)


def command_modules() -> tuple[ModuleType, ...]:
    """The modules of :data:`COMMANDS` (each imports only light modules at its top)."""
    return tuple(importlib.import_module(f"chimed_eval.cli.{name}") for name in COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the global flags and every command of :data:`COMMANDS`."""
    p = argparse.ArgumentParser(prog="chimed-eval", description="Evaluate Chinese medical language models.")
    _add_loudness(p, default=False)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    for command in command_modules():
        command.add_parser(sub)
    for command_parser in sub.choices.values():  # -v / -q after the subcommand too
        _add_loudness(command_parser, default=argparse.SUPPRESS)
    return p


def _add_loudness(p: argparse.ArgumentParser, default: object) -> None:
    """``-v``/``-q`` on the main parser (defaults False) and on each subcommand (no default, so
    that a flag given before the subcommand is not reset by the subcommand's parser)."""
    p.add_argument("-v", "--verbose", action="store_true", default=default, help="log more")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="only warnings that matter and errors; no progress bars")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; a configuration or file-system error is one line, exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.parser = parser  # for commands that read the command line itself (completion)
    if args.verbose and args.quiet:
        print("chimed-eval: error: -v and -q contradict each other; give one", file=sys.stderr)
        return 2
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    handler = {command.NAME: command.run for command in command_modules()}[args.command]
    try:
        return handler(args)
    except BudgetReached as exc:  # a clean stop, not an error: its own exit status
        print(f"chimed-eval: {exc}", file=sys.stderr)
        return BUDGET_EXIT
    except (ChimedEvalError, UnknownNameError) as exc:
        print(f"chimed-eval: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system said no (read-only, full, not a directory...)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"chimed-eval: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
