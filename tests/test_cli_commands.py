"""The command line is one module per subcommand, wired by one list (``chimed_eval.cli.app.COMMANDS``):
a new subcommand is its module plus one line there."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import types

import chimed_eval.cli
from chimed_eval.cli import app


def test_every_command_module_is_wired_once_with_the_one_interface():
    commands = app.command_modules()
    names = [c.NAME for c in commands]
    assert len(names) == len(set(names)), names
    for c in commands:
        assert callable(c.add_parser) and callable(c.run), c.__name__
    sub = next(a for a in app.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == names  # --help lists them in the list's order
    # a module of cli/ that declares a command is in the list (none forgotten)
    declared = []
    for info in pkgutil.iter_modules(chimed_eval.cli.__path__):
        mod = importlib.import_module(f"chimed_eval.cli.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "add_parser"):
            declared.append(mod)
    assert set(declared) == set(commands)


def test_a_new_subcommand_is_its_module_and_one_line_in_the_list(monkeypatch, capsys):
    hello = types.ModuleType("chimed_eval.cli.hello")
    hello.NAME = "hello"
    hello.add_parser = lambda sub: sub.add_parser("hello", help="say hello").add_argument("--who", default="world")
    hello.run = lambda a: print(f"hello {a.who}") or 7
    monkeypatch.setitem(sys.modules, "chimed_eval.cli.hello", hello)  # as if chimed_eval/cli/hello.py
    monkeypatch.setattr(app, "COMMANDS", (*app.COMMANDS, "hello"))  # its one line
    assert app.main(["hello", "--who", "ward"]) == 7
    assert capsys.readouterr().out == "hello ward\n"
    assert "say hello" in app.build_parser().format_help()


def test_no_module_of_the_package_imports_the_wiring():
    """cli/app.py imports the command modules by name (not seen by tests/test_layers.py's AST walk),
    so a command importing app back would be a cycle the walk misses: none may (``__main__.py``,
    ``python -m chimed_eval``, is the program's entry, imported by nothing)."""
    import ast
    from pathlib import Path

    root = Path(chimed_eval.cli.__file__).resolve().parents[1]
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
                     if isinstance(node, ast.ImportFrom) else [])
            if any(n == "chimed_eval.cli.app" or (isinstance(node, ast.ImportFrom) and node.level and n.endswith(".app"))
                   for n in names):
                offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert offenders == []
